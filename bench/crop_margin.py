"""Which crop margin around an MTCNN box reproduces FER2013's framing, measured two ways.

    python bench/crop_margin.py [--faces 800] [--quick]

FER2013 PrivateTest faces are padded and scaled up into "photos" (models/reframe.py), the
shipped detector finds the face, and the worker's crop is taken at several margins. For each
margin: the median pixel correlation of the crop with the original 48x48 face, and the
classifier's accuracy on the crops (beside its accuracy on the original faces).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from models.classifier import EmotionClassifier
from models.crops import DEFAULT_MARGIN, crop_face, to_gray
from models.data import default_data_path, load_split
from models.detector import FaceDetector
from models.reframe import as_photo, correlation

MARGINS = (-0.1, 0.0, 0.1, 0.2, 0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=800)
    parser.add_argument("--quick", action="store_true", help="200 faces")
    args = parser.parse_args()
    split = load_split(default_data_path(), "PrivateTest")
    chosen = np.random.default_rng(1).permutation(len(split))[: 200 if args.quick else args.faces]
    detector, classifier = FaceDetector(), EmotionClassifier()
    kept, grays, boxes = [], [], []
    for index in chosen:
        photo = as_photo(split.images[index])
        detections = detector.detect(photo)
        if len(detections) == 1:
            kept.append(index)
            grays.append(to_gray(photo))
            boxes.append(detections[0].box)
    faces, labels = split.images[kept], split.labels[kept]
    direct = float((classifier.predict(faces).argmax(1) == labels).mean())
    print(f"{len(kept)} of {len(chosen)} PrivateTest faces detected once; accuracy on the originals {direct:.3f}\n")
    print("| margin | median correlation with the original | accuracy on the crops |")
    print("| --- | --- | --- |")
    for margin in MARGINS:
        crops = np.stack([crop_face(gray, box, margin) for gray, box in zip(grays, boxes, strict=True)])
        similar = statistics.median(correlation(c, f) for c, f in zip(crops, faces, strict=True))
        accuracy = float((classifier.predict(crops).argmax(1) == labels).mean())
        shipped = " (shipped)" if margin == DEFAULT_MARGIN else ""
        print(f"| {margin:+.1f}{shipped} | {similar:.3f} | {accuracy:.3f} |")


if __name__ == "__main__":
    main()
