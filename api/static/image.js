/* One image: the annotated preview and, per face, all seven emotion probabilities. */
"use strict";

(() => {
  const { config, COLORS, api, el, percent, number, utc, annotatedImage, notice } = SF;
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

  function explain(code) {
    if (FAILURES[code]) return FAILURES[code];
    if (/^http_\d+$/.test(code)) return `the server answered HTTP ${code.slice(5)}`;
    return "see the message";
  }

  function fact(name, ...value) {
    return [el("dt", {}, name), el("dd", {}, ...value)];
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

  function drawFaces(image) {
    const list = document.getElementById("face-list");
    if (!image.faces.length) {
      list.replaceChildren(el("p", { class: "empty" }, "No faces found in this image."));
      return;
    }
    list.replaceChildren(
      ...image.faces.map((face, index) =>
        el(
          "section",
          { class: "face-card", "data-face-id": face.id, "data-emotion": face.emotion },
          el("h3", {}, `${index + 1}. `, el("span", { style: `color: ${COLORS[face.emotion]}` }, face.emotion), ` ${percent(face.scores[face.emotion])}`),
          el("p", { class: "muted" }, `box [${face.box.join(", ")}] · face confidence ${face.confidence.toFixed(3)}`),
          probabilityRows(face),
        ),
      ),
    );
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
    const missing =
      config.previews === "off"
        ? "No picture: this server keeps no previews of the photos it analyses (SOCIALFER_PREVIEWS=off); the faces below remain."
        : `The preview is no longer kept (previews are kept ${config.preview_retention_days} days); the faces below remain.`;
    view.replaceChildren(annotatedImage(image, { numbered: true, onMissing: missing }));
    drawFaces(image);
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
