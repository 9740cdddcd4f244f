/* socialfer: what the dashboard and the image page share. Plain JavaScript, no build step,
   nothing fetched from outside this server. Every number shown comes from the JSON API. */
"use strict";

const SF = (() => {
  const config = JSON.parse(document.getElementById("config").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LABELLED_FACES = 4; // thumbnails label their boxes up to this many faces
  const COLORS = {
    angry: "#e15759",
    disgust: "#59a14f",
    fear: "#b07aa1",
    happy: "#f1a832",
    sad: "#4e79a7",
    surprise: "#ff9da7",
    neutral: "#9a9a9a",
  };

  /** An error the API answered (or a network failure), with its status and machine-readable code. */
  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /* Who this page is signed in as: the session cookie (HttpOnly, so not readable here) is the
     credential; this answer only says what it may do and carries the CSRF token for writes. */
  let sessionInfo = null;
  async function session(refresh = false) {
    if (!sessionInfo || refresh) {
      const response = await fetch("/api/v1/session", { headers: { Accept: "application/json" } });
      sessionInfo = await response.json();
    }
    return sessionInfo;
  }

  /** fetch + JSON, with the session's CSRF token on writes; any non-2xx becomes an ApiFailure carrying the API's message. */
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = (await session()).csrf_token;
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (error) {
      throw new ApiFailure(0, "network_error", `the server did not answer (${error.message})`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && body.error ? body.error : { code: `http_${response.status}`, message: response.statusText };
      throw new ApiFailure(response.status, detail.code, detail.message);
    }
    return body;
  }

  /** Build an element: el("a", {href: "/"}, "text", child...). `null` attributes are skipped. */
  function make(namespace, tag, attributes, children) {
    const node = namespace ? document.createElementNS(namespace, tag) : document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const el = (tag, attributes, ...children) => make(null, tag, attributes, children);
  const svg = (tag, attributes, ...children) => make(SVG_NS, tag, attributes, children);

  const percent = (share, digits = 1) => `${(share * 100).toFixed(digits)} %`;
  const number = (value) => Number(value).toLocaleString("en-US");
  const plural = (count, word) => `${number(count)} ${word}${count === 1 ? "" : "s"}`;

  /** "2025-03-01 12:00 UTC": every time on the pages is UTC, like the API's and the date filters. */
  function utc(iso, withTime = true) {
    if (!iso) return "–";
    const text = new Date(iso).toISOString().replace("T", " ");
    return withTime ? `${text.slice(0, 16)} UTC` : text.slice(0, 10);
  }

  function topEmotion(face) {
    return [face.emotion, face.scores[face.emotion]];
  }

  /** A label drawn inside the image: coloured plate, white text, sized in the image's own pixels. */
  function boxLabel(x, y, text, size, color) {
    const width = text.length * size * 0.58 + size * 0.5;
    const top = y - size * 1.3 >= 0 ? y - size * 1.3 : y;
    return svg(
      "g",
      { class: "label" },
      svg("rect", { x, y: top, width, height: size * 1.3, fill: color, rx: size * 0.2 }),
      svg("text", { x: x + size * 0.25, y: top + size, "font-size": size, fill: "#fff" }, text),
    );
  }

  /**
   * The preview with each face's box and label drawn over it. Boxes are in the original
   * image's pixels; the overlay's viewBox is the original size, so the browser scales them
   * onto the (smaller) preview exactly.
   */
  function annotatedImage(image, { numbered = false, onMissing = null } = {}) {
    const width = image.width || 1;
    const height = image.height || 1;
    const figure = el("figure", { class: "annotated", "data-image-id": image.id, style: `aspect-ratio: ${width} / ${height}` });
    const picture = el("img", { src: `/api/v1/images/${image.id}/preview`, alt: `image ${image.id}`, loading: "lazy" });
    // Labels stay legible on a 200 px thumbnail and modest on the full page.
    const size = Math.max(12, Math.max(width, height) / (numbered ? 36 : 18));
    const overlay = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", class: "overlay" });
    // A crowd's labels would cover each other on a thumbnail: boxes only (its page numbers them).
    const labelled = image.faces.length <= LABELLED_FACES;
    image.faces.forEach((face, index) => {
      const [x, y, w, h] = face.box;
      const [emotion, score] = topEmotion(face);
      const color = COLORS[emotion];
      const text = `${numbered ? `${index + 1} ` : ""}${emotion} ${percent(score, 0)}`;
      overlay.append(
        svg(
          "g",
          { class: "face", "data-face-id": face.id, "data-emotion": emotion },
          svg("title", {}, `${emotion} ${percent(score)} (face confidence ${face.confidence.toFixed(3)})`),
          svg("rect", { class: "box", x, y, width: w, height: h, stroke: color, "stroke-width": size / 5, fill: "none" }),
          labelled ? boxLabel(x, y, text, size, color) : null,
        ),
      );
    });
    picture.addEventListener("error", () => {
      // Past the retention time (or never kept): say so rather than draw boxes on nothing.
      figure.classList.add("missing");
      figure.replaceChildren(el("div", { class: "no-preview" }, onMissing || "no preview kept"));
    });
    figure.append(picture, overlay);
    return figure;
  }

  /** Show (or clear, with message null) a notice at the top of the page; `kind` is info, warning or error. */
  function notice(id, kind, message) {
    const holder = document.getElementById("notices");
    let box = document.getElementById(id);
    if (message === null) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = el("div", { id, class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" });
      holder.append(box);
    }
    box.className = `notice ${kind}`;
    box.replaceChildren(...(Array.isArray(message) ? message : [message]));
  }

  /** The header's account area and the open-mode banner, on every page. */
  async function renderAccount() {
    const account = document.getElementById("account");
    const banner = document.getElementById("access-banner");
    let info;
    try {
      info = await session();
    } catch (error) {
      return;
    }
    account.replaceChildren();
    if (info.open_mode) {
      banner.hidden = false;
      banner.textContent =
        "Open mode: no API key exists, so anyone who can reach this address can read and change everything here. " +
        "It listens on 127.0.0.1 only; create a key with `socialfer keys create --scope admin --name NAME` to close it.";
    } else if (info.signed_in) {
      const signOut = el("a", { href: "/signin", id: "sign-out" }, "Sign out");
      signOut.addEventListener("click", async (event) => {
        event.preventDefault();
        await api("/api/v1/session", { method: "DELETE" });
        window.location.assign("/signin");
      });
      account.append(el("span", { id: "signed-in-as" }, `${info.name} (${info.scope})`), " ", signOut);
    } else {
      account.append(el("a", { href: "/signin", id: "sign-in" }, "Sign in"));
    }
  }
  renderAccount();

  /** Whether this page may submit: open mode, or a signed-in key of the write scope or above. */
  async function canWrite() {
    const info = await session();
    return info.open_mode || info.scope === "write" || info.scope === "admin";
  }

  return { config, COLORS, ApiFailure, api, session, canWrite, el, svg, percent, number, plural, utc, annotatedImage, notice };
})();
