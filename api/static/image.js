/* One image: a large picture with a numbered marker per face, a compact sortable table of the
   faces, the photo's own emotion summary, and the seven probabilities of the selected face.
   Picture and table select the same face: a marker or a row, by pointer or keyboard. */
"use strict";

(() => {
  const { config, COLORS, api, el, percent, number, plural, utc, notice } = SF;
  const POLL_MS = 1500;
  const imageId = document.getElementById("image-page").dataset.imageId;
  // What the failure codes mean to an analyst (the README's table, shortened).
  const FAILURES = {
    unsupported_scheme: "the URL is not http or https",
    credentials_in_url: "the URL carries a user name or password",
    invalid_url: "the URL has no host or a bad port",
    blocked_port: "the URL uses a port workers may not connect to (80 and 443 only)",
    dns_error: "the host name does not resolve",
    blocked_address: "the host is on a private or reserved network, which workers may not fetch",
    connection_error: "the connection was refused or dropped",
    timeout: "the server took too long to answer",
    tls_error: "the secure connection failed",
    too_many_redirects: "more than 5 redirects",
    too_large: "the image is over the size limit",
    empty_body: "the server sent nothing",
    not_an_image: "the URL gave text or bytes that are not an image",
    no_image_in_page: "the URL gave a web page without an og:image or twitter:image",
    corrupt_image: "the image file is truncated or damaged",
    worker_lost: "the image lost its worker on every attempt (it may crash the worker)",
    upload_missing: "the uploaded file is no longer stored",
    internal_error: "the worker hit an unexpected error (see its log)",
  };
  // Table columns: how each sorts (numbers descending first, words ascending).
  const COLUMNS = [
    { key: "number", label: "#", value: (face) => face.number, numeric: true },
    { key: "emotion", label: "emotion", value: (face) => face.emotion },
    { key: "probability", label: "probability", value: (face) => face.scores[face.emotion], numeric: true },
    { key: "size", label: "size", value: (face) => face.size_px, numeric: true },
    { key: "flags", label: "flags", value: (face) => flagWords(face).join(", ") },
  ];

  let faces = []; // the image's faces, each with its `number` (reading order, as stored)
  let selected = null; // index into `faces`
  let sort = { key: "number", descending: false };

  function explain(code) {
    if (FAILURES[code]) return FAILURES[code];
    if (/^http_\d+$/.test(code)) return `the server answered HTTP ${code.slice(5)}`;
    return "see the message";
  }

  function fact(name, ...value) {
    return [el("dt", {}, name), el("dd", {}, ...value)];
  }

  function flagWords(face) {
    return [face.low_resolution ? "low resolution" : null, face.uncertain ? "uncertain" : null].filter(Boolean);
  }

  function drawFacts(image) {
    const source = /^https?:/.test(image.url) ? el("a", { href: image.url, rel: "noreferrer" }, image.url) : image.url;
    const size = image.width ? `${image.width} × ${image.height} px, ${number(image.byte_size || 0)} bytes` : "–";
    document.getElementById("image-facts").replaceChildren(
      ...fact("source", source),
      ...fact("batch", el("a", { href: `/?batch_id=${image.batch_id}` }, `#${image.batch_id}`), " · ", el("a", { href: `/?platform=${image.platform}` }, image.platform)),
      ...fact("status", el("span", { class: `badge ${image.status}`, "data-status": image.status }, image.status)),
      ...fact("size", size),
      ...fact("analysed", utc(image.finished_at)),
    );
  }

  /** What the detector could not cover on this image: a scan budget, a gate, a cap on faces. */
  function drawDetectionNotes(image) {
    const notes = [];
    const detection = image.detection || {};
    if (detection.scan_capped) {
      notes.push(`This image is larger than the detector's scan budget: faces under ${detection.min_face_px} px were not looked for.`);
    } else if (detection.min_face_px && detection.min_face_px > config.min_face_px) {
      notes.push(`Faces under ${detection.min_face_px} px were not looked for: every face the first pass found was large.`);
    }
    if (detection.faces_beyond_cap) {
      notes.push(`${plural(detection.faces_beyond_cap, "more face")} found beyond the limit of ${number(config.max_faces)} per image; the largest are kept.`);
    }
    document.getElementById("detection-notes").replaceChildren(
      ...notes.map((text) => el("p", { class: "notice info detection-note" }, text)),
    );
  }

  function probabilityRows(face) {
    return config.emotions.map((emotion) =>
      el(
        "div",
        { class: `probability${emotion === face.emotion ? " dominant" : ""}`, "data-emotion": emotion, "data-score": face.scores[emotion] },
        el("span", { class: "name" }, emotion),
        el("span", { class: "track" }, el("span", { style: `width: ${face.scores[emotion] * 100}%; background: ${COLORS[emotion]}` })),
        el("span", { class: "value" }, percent(face.scores[emotion])),
      ),
    );
  }

  function faceTitle(face) {
    return `Face ${face.number}: ${face.emotion} ${percent(face.scores[face.emotion], 0)}`;
  }

  // --- the picture ------------------------------------------------------------------------------

  /** Percent of the picture, so boxes and markers stay on their faces at any displayed size. */
  function place(face, image) {
    const [x, y, w, h] = face.box;
    return { left: (100 * x) / image.width, top: (100 * y) / image.height, width: (100 * w) / image.width, height: (100 * h) / image.height };
  }

  function drawPicture(image) {
    const view = document.getElementById("image-view");
    const width = image.width || 1;
    const height = image.height || 1;
    const figure = el("figure", {
      class: "group-picture",
      "data-image-id": image.id,
      style: `aspect-ratio: ${width} / ${height}; --ratio: ${width / height}`,
    });
    const picture = el("img", { src: `/api/v1/images/${image.id}/preview`, alt: `image ${image.id}, ${plural(faces.length, "face")} marked` });
    const layer = el("div", { class: "faces-layer" });
    faces.forEach((face, index) => {
      const at = place(face, image);
      face.place = at;
      const color = COLORS[face.emotion];
      layer.append(
        el("div", {
          class: "face-box",
          "data-index": index,
          "data-face-id": face.id,
          "data-emotion": face.emotion,
          style: `left: ${at.left}%; top: ${at.top}%; width: ${at.width}%; height: ${at.height}%; --color: ${color}`,
        }),
        el(
          "button",
          {
            type: "button",
            class: "marker",
            "data-index": index,
            "data-face-id": face.id,
            "aria-label": faceTitle(face),
            "aria-pressed": "false",
            style: `left: ${at.left}%; top: ${at.top}%; --color: ${color}`,
          },
          String(face.number),
        ),
      );
    });
    const label = el("div", { class: "face-label", id: "face-label", hidden: true });
    picture.addEventListener("error", () => {
      const missing =
        config.previews === "off"
          ? "No picture: this server keeps no previews of the photos it analyses (SOCIALFER_PREVIEWS=off); the faces remain in the table."
          : `The preview is no longer kept (previews are kept ${config.preview_retention_days} days); the faces remain in the table.`;
      figure.classList.add("missing");
      figure.replaceChildren(el("div", { class: "no-preview" }, missing));
    });
    layer.addEventListener("pointerover", (event) => {
      const target = event.target.closest("[data-index]");
      if (target) showLabel(Number(target.dataset.index));
    });
    layer.addEventListener("pointerleave", () => showLabel(selected));
    layer.addEventListener("click", (event) => {
      const target = event.target.closest("[data-index]");
      if (target) select(Number(target.dataset.index), { from: "picture" });
    });
    layer.addEventListener("keydown", markerKeys);
    figure.append(picture, layer, label);
    view.replaceChildren(figure);
  }

  /** Arrow keys walk the markers in number order; Escape clears the selection. */
  function markerKeys(event) {
    const marker = event.target.closest("button.marker");
    if (!marker) return;
    const index = Number(marker.dataset.index);
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (step) {
      event.preventDefault();
      const next = (index + step + faces.length) % faces.length;
      document.querySelector(`button.marker[data-index="${next}"]`).focus();
      select(next, { from: "picture" });
    } else if (event.key === "Escape") {
      select(null);
    }
  }

  /** The one label on the picture: the face under the pointer, else the selected one; kept inside the picture. */
  function showLabel(index) {
    const label = document.getElementById("face-label");
    if (!label) return;
    if (index === null || index === undefined || !faces[index]) {
      label.hidden = true;
      return;
    }
    const face = faces[index];
    const at = face.place;
    const flags = flagWords(face);
    label.replaceChildren(el("b", {}, String(face.number)), ` ${face.emotion} ${percent(face.scores[face.emotion], 0)}`, flags.length ? ` · ${flags.join(", ")}` : "");
    label.dataset.index = index;
    const below = at.top + at.height < 88;
    const rightwards = at.left < 70;
    label.style.top = `${below ? at.top + at.height : at.top}%`;
    label.style.left = `${rightwards ? at.left : at.left + at.width}%`;
    label.style.transform = `translate(${rightwards ? "0" : "-100%"}, ${below ? "4px" : "calc(-100% - 4px)"})`;
    label.hidden = false;
  }

  // --- the table --------------------------------------------------------------------------------

  function sortedFaces() {
    const column = COLUMNS.find((c) => c.key === sort.key);
    const order = faces.map((face, index) => index);
    order.sort((a, b) => {
      const [x, y] = [column.value(faces[a]), column.value(faces[b])];
      const compared = column.numeric ? x - y : String(x).localeCompare(String(y));
      return (sort.descending ? -compared : compared) || faces[a].number - faces[b].number;
    });
    return order;
  }

  function drawTable() {
    const header = el(
      "tr",
      {},
      COLUMNS.map((column) => {
        const active = sort.key === column.key;
        return el(
          "th",
          { scope: "col", "aria-sort": active ? (sort.descending ? "descending" : "ascending") : "none", class: column.numeric ? "num" : null },
          el("button", { type: "button", class: "sort", "data-sort": column.key, title: `sort by ${column.label}` }, column.label, el("span", { class: "arrow", "aria-hidden": "true" }, active ? (sort.descending ? " ▼" : " ▲") : "")),
        );
      }),
    );
    const rows = sortedFaces().map((index) => {
      const face = faces[index];
      return el(
        "tr",
        { "data-index": index, "data-face-id": face.id, "data-emotion": face.emotion, class: index === selected ? "selected" : null },
        el("td", { class: "num" }, el("button", { type: "button", class: "face-link", "data-index": index, "aria-label": faceTitle(face), "aria-pressed": String(index === selected) }, String(face.number))),
        el("td", {}, el("i", { class: "swatch", style: `background: ${COLORS[face.emotion]}`, "aria-hidden": "true" }), face.emotion),
        el("td", { class: "num", "data-probability": face.scores[face.emotion] }, percent(face.scores[face.emotion])),
        el("td", { class: "num", "data-size": face.size_px }, `${face.size_px} px`),
        el("td", {}, flagWords(face).map((word) => el("span", { class: `flag ${word.replace(" ", "-")}` }, word))),
      );
    });
    const table = el("table", { class: "faces", "aria-labelledby": "faces-heading" }, el("thead", {}, header), el("tbody", {}, rows));
    table.addEventListener("click", (event) => {
      const sorter = event.target.closest("button.sort");
      if (sorter) {
        const key = sorter.dataset.sort;
        sort = { key, descending: sort.key === key ? !sort.descending : COLUMNS.find((c) => c.key === key).numeric && key !== "number" };
        drawTable();
        document.querySelector(`button.sort[data-sort="${key}"]`).focus();
        return;
      }
      const row = event.target.closest("tr[data-index]");
      if (row) select(Number(row.dataset.index), { from: "table" });
    });
    table.addEventListener("pointerover", (event) => {
      const row = event.target.closest("tr[data-index]");
      if (row) highlight(Number(row.dataset.index), "hovered");
    });
    table.addEventListener("pointerleave", () => highlight(null, "hovered"));
    document.getElementById("face-table").replaceChildren(table);
  }

  /** Mark one face (or none) with `className` on the picture and in the table. */
  function highlight(index, className) {
    for (const node of document.querySelectorAll(`#image-page .${className}`)) node.classList.remove(className);
    if (index === null) return;
    for (const node of document.querySelectorAll(`#image-page [data-index="${index}"]:is(.face-box, .marker, tr)`)) node.classList.add(className);
  }

  function select(index, { from = null } = {}) {
    selected = index;
    highlight(index, "selected");
    for (const node of document.querySelectorAll("button.marker, button.face-link")) {
      node.setAttribute("aria-pressed", String(Number(node.dataset.index) === index));
    }
    showLabel(index);
    drawDetail();
    if (index === null) return;
    if (from !== "table") {
      const row = document.querySelector(`#face-table tr[data-index="${index}"]`);
      if (row) row.scrollIntoView({ block: "nearest" });
    }
    if (from !== "picture") {
      const marker = document.querySelector(`button.marker[data-index="${index}"]`);
      if (marker) marker.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  function drawDetail() {
    const detail = document.getElementById("face-detail");
    if (selected === null) {
      detail.replaceChildren(el("p", { class: "muted" }, "Select a face on the picture or in the table to see its seven probabilities."));
      return;
    }
    const face = faces[selected];
    detail.replaceChildren(
      el(
        "section",
        { class: "face-card", "data-face-id": face.id, "data-emotion": face.emotion, "data-index": selected },
        el("h3", {}, `Face ${face.number}: ${face.emotion} ${percent(face.scores[face.emotion])}`),
        el("p", { class: "muted" }, `box [${face.box.join(", ")}] · ${face.size_px} px · face confidence ${face.confidence.toFixed(3)}${flagWords(face).length ? ` · ${flagWords(face).join(", ")}` : ""}`),
        probabilityRows(face),
      ),
    );
  }

  // --- the photo's summary ------------------------------------------------------------------------

  function drawSummary() {
    const counts = Object.fromEntries(config.emotions.map((name) => [name, 0]));
    for (const face of faces) counts[face.emotion] += 1;
    const most = Math.max(1, ...Object.values(counts));
    const lowResolution = faces.filter((face) => face.low_resolution).length;
    const uncertain = faces.filter((face) => face.uncertain).length;
    const caption = [plural(faces.length, "face"), lowResolution ? `${number(lowResolution)} low resolution` : null, uncertain ? `${number(uncertain)} uncertain` : null];
    document.getElementById("photo-caption").textContent = caption.filter(Boolean).join(" · ");
    document.getElementById("photo-emotions").replaceChildren(
      ...config.emotions.map((emotion) =>
        el(
          "div",
          { class: "summary-row", "data-emotion": emotion, "data-count": counts[emotion] },
          el("span", { class: "name" }, emotion),
          el("span", { class: "track" }, el("span", { style: `width: ${(100 * counts[emotion]) / most}%; background: ${COLORS[emotion]}` })),
          el("span", { class: "value" }, `${number(counts[emotion])} · ${percent(faces.length ? counts[emotion] / faces.length : 0, 0)}`),
        ),
      ),
    );
  }

  // --- loading ----------------------------------------------------------------------------------

  function drawFaces(image) {
    faces = image.faces.map((face, index) => ({ ...face, number: index + 1 }));
    const any = faces.length > 0;
    for (const id of ["photo-summary", "faces-panel", "face-detail"]) document.getElementById(id).hidden = !any;
    if (!any) {
      document.getElementById("face-list").replaceChildren(el("p", { class: "empty" }, "No faces found in this image."));
      return;
    }
    drawSummary();
    drawTable();
    drawDetail();
  }

  function drawOutcome(image) {
    const view = document.getElementById("image-view");
    notice("status-notice", "info", null);
    if (image.status === "queued" || image.status === "processing") {
      notice("status-notice", "info", `This image is ${image.status}: the page updates when a worker has analysed it.`);
      view.replaceChildren();
      return false;
    }
    if (image.status === "failed") {
      const code = image.error ? image.error.code : "unknown";
      notice("status-notice", "error", [
        "Analysis failed: ",
        el("code", {}, code),
        ` — ${explain(code)}.`,
        image.error && image.error.message ? ` (${image.error.message})` : "",
      ]);
      view.replaceChildren();
      return true;
    }
    drawFaces(image);
    drawPicture(image);
    drawDetectionNotes(image);
    return true;
  }

  async function load() {
    try {
      const image = await api(`/api/v1/images/${imageId}`);
      drawFacts(image);
      const finished = drawOutcome(image);
      document.body.dataset.state = finished ? "ready" : "waiting";
      if (!finished) setTimeout(load, POLL_MS);
    } catch (error) {
      const message = error.status === 404 ? `There is no image ${imageId}.` : `The API did not answer (${error.message}).`;
      notice("status-notice", "error", message);
      document.body.dataset.state = "error";
      if (error.status !== 404) setTimeout(load, POLL_MS * 4);
    }
  }

  load();
})();
