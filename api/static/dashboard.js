/* The dashboard at /: every panel is drawn from the JSON API under the same filters, which
   live in the page's URL so a view can be shared. Polls while workers run. */
"use strict";

(() => {
  const { config, COLORS, api, el, svg, percent, number, plural, utc, annotatedImage, notice } = SF;
  const FILTERS = ["platform", "batch_id", "since", "until", "min_face_px", "uncertain"];
  const SIDES = ["a", "b"]; // the compare view's two sets: a.platform, b.since, ... in the URL and the API
  const COMPARE_KEYS = SIDES.flatMap((side) => FILTERS.slice(0, 4).map((key) => `${side}.${key}`)); // no face choice there
  const ACTIVE_POLL_MS = 1500; // while a batch is in progress
  const IDLE_POLL_MS = 10000; // otherwise, to notice batches submitted elsewhere
  const BATCHES_SHOWN = 15;
  const RECENT_IMAGES = 12;
  const BATCH_CHOICES = 100;
  const MIN_SLOTS = 12; // a timeline of one busy hour still reads as a time axis
  const MAX_BAR_WIDTH = 36;
  const HOUR_MS = 3600 * 1000;
  const DAY_MS = 24 * HOUR_MS;

  let filters = readFilters();
  let compareSets = readCompare();
  let timer = null;
  let sequence = 0; // only the newest refresh may draw
  let refreshes = 0;
  let wasActive = false; // one more quick refresh after work ends shows its last numbers
  const drawn = {}; // panel -> JSON it was last drawn from, so unchanged panels are left alone
  const openFailures = new Set(); // batch ids whose failure list the analyst opened

  // --- filters and the URL ------------------------------------------------------------------

  function readFilters() {
    const params = new URLSearchParams(location.search);
    return Object.fromEntries(FILTERS.filter((key) => params.get(key)).map((key) => [key, params.get(key)]));
  }

  function readCompare() {
    const params = new URLSearchParams(location.search);
    return Object.fromEntries(COMPARE_KEYS.filter((key) => params.get(key)).map((key) => [key, params.get(key)]));
  }

  /** The page's own query string: the filters, then the compare view's sets. */
  function pageQuery() {
    return new URLSearchParams({ ...filters, ...compareSets }).toString();
  }

  function pushUrl() {
    const search = pageQuery();
    history.pushState(null, "", search ? `?${search}` : location.pathname);
  }

  /** The API query string for the current filters plus `extra`; the same string the page's URL carries. */
  function query(extra = {}) {
    return new URLSearchParams({ ...filters, ...extra }).toString();
  }

  function syncControls() {
    document.getElementById("filter-platform").value = filters.platform || "";
    ensureBatchOption(filters.batch_id);
    document.getElementById("filter-batch").value = filters.batch_id || "";
    document.getElementById("filter-since").value = (filters.since || "").slice(0, 10);
    document.getElementById("filter-until").value = (filters.until || "").slice(0, 10);
    ensureOption("filter-min-face", filters.min_face_px, `${filters.min_face_px} px and larger`);
    document.getElementById("filter-min-face").value = filters.min_face_px || "";
    document.getElementById("filter-uncertain").value = filters.uncertain || "";
    document.getElementById("clear-filters").hidden = Object.keys(filters).length === 0;
    document.getElementById("export-csv").href = `/api/v1/faces/export?${query({ format: "csv" })}`;
    document.getElementById("export-json").href = `/api/v1/faces/export?${query({ format: "json" })}`;
    for (const key of COMPARE_KEYS) {
      const control = document.querySelector(`#compare-form [name="${key}"]`);
      const value = compareSets[key] || "";
      control.value = key.endsWith("since") || key.endsWith("until") ? value.slice(0, 10) : value;
    }
    document.getElementById("clear-compare").hidden = Object.keys(compareSets).length === 0;
  }

  function setFilters(next) {
    filters = Object.fromEntries(FILTERS.filter((key) => next[key]).map((key) => [key, next[key]]));
    pushUrl();
    syncControls();
    refresh();
  }

  function setCompare(next) {
    compareSets = Object.fromEntries(COMPARE_KEYS.filter((key) => next[key]).map((key) => [key, next[key]]));
    pushUrl();
    syncControls();
    refresh();
  }

  function compareChanged(event) {
    setCompare({ ...compareSets, [event.target.name]: event.target.value });
  }

  function controlsChanged(event) {
    const next = { ...filters };
    const key = event.target.name;
    next[key] = event.target.value;
    setFilters(next);
  }

  /** A value from a shared URL that the select does not offer (min_face_px=36) still shows. */
  function ensureOption(id, value, label) {
    const select = document.getElementById(id);
    if (value && !select.querySelector(`option[value="${CSS.escape(value)}"]`)) select.append(el("option", { value }, label));
  }

  function ensureBatchOption(batchId) {
    const select = document.getElementById("filter-batch");
    if (batchId && !select.querySelector(`option[value="${CSS.escape(batchId)}"]`)) {
      select.append(el("option", { value: batchId }, `#${batchId}`));
    }
  }

  async function loadBatchChoices() {
    try {
      const body = await api(`/api/v1/batches?limit=${BATCH_CHOICES}`);
      const select = document.getElementById("filter-batch");
      select.replaceChildren(
        el("option", { value: "" }, "all"),
        ...body.items.map((batch) => el("option", { value: batch.id }, `#${batch.id}${batch.name ? ` ${batch.name}` : ""}`)),
      );
      syncControls();
    } catch (error) {
      /* the refresh loop reports an unreachable API */
    }
  }

  // --- charts -------------------------------------------------------------------------------

  /** "34.1 % [31.2–37.0]", or only the interval while the set is too small for a share to mean much. */
  function shareText(share, interval, reliable) {
    const range = `${(interval[0] * 100).toFixed(1)}–${(interval[1] * 100).toFixed(1)}`;
    return reliable ? `${percent(share)} [${range}]` : `${range} %`;
  }

  /**
   * Seven horizontal bars: the classifier's share (bar) with its 95 % interval (line), and the
   * corrected estimate of the true share (diamond) with its interval; share and count written on
   * each. `scale` is the share a full bar stands for; intervals past it are cut at the edge.
   */
  function emotionBars(summary, scale, { compact = false } = {}) {
    const rowHeight = compact ? 28 : 36;
    const barHeight = compact ? 13 : 17;
    const labelWidth = 66;
    const width = compact ? 300 : 520;
    const barSpace = width - labelWidth - (compact ? 120 : 175);
    const at = (share) => labelWidth + Math.min(scale > 0 ? (share / scale) * barSpace : 0, barSpace);
    const chart = svg("svg", {
      class: "bars",
      viewBox: `0 0 ${width} ${rowHeight * config.emotions.length}`,
      role: "img",
      "aria-label": "share of faces per emotion, with 95 % intervals",
    });
    config.emotions.forEach((emotion, index) => {
      const { count, share, interval, corrected } = summary.emotions[emotion];
      const y = index * rowHeight + 3;
      const middle = y + barHeight / 2;
      const text = `${shareText(share, interval, summary.reliable)} · ${number(count)}`;
      const title = [`${emotion}: ${number(count)} faces, ${text} (classifier's share, 95 % interval)`];
      const bar = svg(
        "g",
        {
          class: "bar",
          "data-emotion": emotion,
          "data-count": count,
          "data-share": share,
          "data-low": interval[0],
          "data-high": interval[1],
          "data-corrected": corrected ? corrected.share : null,
        },
        svg("text", { class: "name", x: labelWidth - 6, y: middle + 4, "text-anchor": "end" }, emotion),
        svg("rect", { x: labelWidth, y, width: Math.max(at(share) - labelWidth, count ? 1 : 0), height: barHeight, fill: COLORS[emotion], rx: 2 }),
        svg("line", { class: "interval", x1: at(interval[0]), x2: at(interval[1]), y1: middle, y2: middle }),
        svg("text", { class: "value", x: Math.max(at(share), at(interval[1])) + 5, y: middle + 4 }, text),
      );
      if (corrected) {
        const cx = at(corrected.share);
        const cy = y + barHeight + (compact ? 6 : 8);
        const estimate = shareText(corrected.share, corrected.interval, summary.reliable);
        bar.append(
          svg("line", { class: "corrected-interval", x1: at(corrected.interval[0]), x2: at(corrected.interval[1]), y1: cy, y2: cy }),
          svg("path", { class: "corrected", d: `M${cx} ${cy - 3.5}L${cx + 3.5} ${cy}L${cx} ${cy + 3.5}L${cx - 3.5} ${cy}Z` }),
          compact ? null : svg("text", { class: "corrected-value", x: Math.max(cx, at(corrected.interval[1])) + 7, y: cy + 4 }, `≈ ${estimate} corrected`),
        );
        title.push(`corrected for the classifier's errors: ${estimate}`);
      }
      bar.append(svg("title", {}, title.join("\n")));
      chart.append(bar);
    });
    return chart;
  }

  function largestShare(stats) {
    const summaries = [stats, ...Object.values(stats.by_platform)];
    return Math.max(0, ...summaries.flatMap((summary) => config.emotions.map((name) => summary.emotions[name].share)));
  }

  /** What the marks mean, and whether the numbers are to be trusted yet. */
  function barsLegend(summary, statistics) {
    const items = [
      el("span", {}, el("i", { class: "key-bar" }), "classifier's share"),
      el("span", {}, el("i", { class: "key-interval" }), "95 % interval (images as clusters)"),
    ];
    if (statistics.corrected) {
      items.push(el("span", {}, el("i", { class: "key-corrected" }), `≈ corrected for the classifier's errors (${statistics.corrected.matrix} matrix)`));
    }
    const parts = [el("div", { class: "legend" }, items)];
    const thin = statistics.corrected ? thinRowsNote(statistics.corrected) : null;
    if (thin) parts.push(thin);
    const warning = matrixWarning(statistics);
    if (warning) parts.push(warning);
    if (!summary.reliable) parts.unshift(unreliableNote(summary, statistics));
    return parts;
  }

  /** A matrix not measured on real photos: the corrected numbers rest on errors made on other faces. */
  function matrixWarning(statistics) {
    const corrected = statistics.corrected;
    if (!corrected || !corrected.warning) return null;
    return el("p", { class: "matrix-warning" }, `Corrected with ${corrected.matrix}: ${corrected.warning}.`);
  }

  /** Which corrected shares rest mostly on an assumption: their matrix row had few labelled faces of its own. */
  function thinRowsNote(corrected) {
    if (!corrected.thin_rows.length) return null;
    const rows = corrected.thin_rows.map((name) => `${name} (${corrected.calibration_faces[name]} faces)`).join(", ");
    return el(
      "p",
      { class: "thin-rows" },
      `The corrected ${rows} lean on FER2013's confusions (a prior worth ${corrected.prior_faces} faces): the calibration set has ` +
        "too few such faces to check them (docs/statistics.md in the project).",
    );
  }

  function unreliableNote(summary, statistics) {
    return el(
      "p",
      { class: "unreliable" },
      `Not reliable yet: ${plural(summary.images_with_faces, "image")} with faces, under the ${statistics.min_images} a share needs. `,
      "The intervals show how little these faces pin the shares down.",
    );
  }

  function drawEmotions(stats) {
    const holder = document.getElementById("emotion-chart");
    if (!stats.faces) {
      holder.replaceChildren(el("p", { class: "empty" }, emptyText("No faces found yet.")));
      return;
    }
    holder.replaceChildren(emotionBars(stats, largestShare(stats)), ...barsLegend(stats, stats.statistics));
  }

  function drawPlatforms(stats) {
    const scale = largestShare(stats);
    const panels = config.platforms.map((platform) => {
      const summary = stats.by_platform[platform];
      const caption = summary ? `${plural(summary.faces, "face")} in ${plural(summary.images, "image")}` : "no analysed images";
      const unreliable = summary && summary.faces && !summary.reliable;
      return el(
        "div",
        { class: "platform", "data-platform": platform, "data-faces": summary ? summary.faces : 0, "data-reliable": summary ? summary.reliable : null },
        el("h3", {}, platform, " ", el("small", {}, caption)),
        unreliable ? el("p", { class: "unreliable" }, "not reliable yet: intervals shown") : null,
        summary && summary.faces ? emotionBars(summary, scale, { compact: true }) : el("p", { class: "empty" }, "no faces"),
      );
    });
    document.getElementById("platform-charts").replaceChildren(...panels);
  }

  function tickLabel(time, bucket) {
    const iso = new Date(time).toISOString();
    return bucket === "hour" ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}h` : iso.slice(0, 10);
  }

  /** Stacked bars per hour or day on a time axis from the range's start to its end; empty buckets stay empty. */
  function timelineChart(timeline) {
    const step = timeline.bucket === "hour" ? HOUR_MS : DAY_MS;
    let first = Math.floor(Date.parse(timeline.start) / step) * step;
    const lastItem = Date.parse(timeline.items[timeline.items.length - 1].start);
    let slots = Math.max(Math.ceil((Date.parse(timeline.end) - first) / step), Math.round((lastItem - first) / step) + 1);
    if (slots < MIN_SLOTS) {
      first -= Math.floor((MIN_SLOTS - slots) / 2) * step; // a short range sits in the middle
      slots = MIN_SLOTS;
    }
    const [width, height, left, right, top, bottom] = [640, 230, 34, 8, 18, 26];
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const slotWidth = plotWidth / slots;
    const most = Math.max(...timeline.items.map((item) => item.faces));
    const chart = svg("svg", { class: "timeline", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "faces per emotion over time" });
    for (const value of [...new Set([0, Math.round(most / 2), most])]) {
      const y = top + plotHeight - (value / most) * plotHeight;
      chart.append(
        svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }),
        svg("text", { class: "axis", x: left - 4, y: y + 4, "text-anchor": "end" }, value),
      );
    }
    const tickEvery = Math.max(1, Math.ceil(slots / 6));
    for (let slot = 0; slot < slots; slot += tickEvery) {
      const x = left + slot * slotWidth;
      chart.append(
        svg("line", { class: "tick", x1: x, x2: x, y1: top + plotHeight, y2: top + plotHeight + 4 }),
        svg("text", { class: "axis", x, y: height - 8 }, tickLabel(first + slot * step, timeline.bucket)),
      );
    }
    const barWidth = Math.min(MAX_BAR_WIDTH, Math.max(1, slotWidth * 0.8));
    for (const item of timeline.items) {
      const x = left + ((Date.parse(item.start) - first) / step) * slotWidth + (slotWidth - barWidth) / 2;
      let y = top + plotHeight;
      const parts = config.emotions.map((name) => `${name} ${item.emotions[name]}`).filter((text) => !text.endsWith(" 0"));
      const bar = svg(
        "g",
        { class: "bucket", "data-start": item.start, "data-faces": item.faces },
        svg("title", {}, `${utc(item.start)}: ${item.faces} faces (${parts.join(", ")})`),
      );
      for (const emotion of config.emotions) {
        const count = item.emotions[emotion];
        if (!count) continue;
        const segment = (count / most) * plotHeight;
        y -= segment;
        bar.append(svg("rect", { x, y, width: barWidth, height: segment, fill: COLORS[emotion], "data-emotion": emotion, "data-count": count }));
      }
      if (slotWidth >= 14) {
        bar.append(svg("text", { class: "total", x: x + barWidth / 2, y: y - 3, "text-anchor": "middle" }, item.faces));
      }
      chart.append(bar);
    }
    return chart;
  }

  function drawTimeline(timeline) {
    const holder = document.getElementById("timeline-chart");
    document.getElementById("timeline-caption").textContent = `faces per emotion per ${timeline.bucket} (UTC)`;
    if (!timeline.items.length) {
      holder.replaceChildren(el("p", { class: "empty" }, emptyText("No faces in this range yet.")));
      return;
    }
    const legend = el(
      "div",
      { class: "legend" },
      config.emotions.map((name) => el("span", {}, el("i", { style: `background: ${COLORS[name]}` }), name)),
    );
    holder.replaceChildren(timelineChart(timeline), legend);
  }

  // --- compare ------------------------------------------------------------------------------

  function sideCaption(side, summary) {
    const own = Object.entries(summary.filters).filter(([, value]) => value !== null);
    const described = own.length ? own.map(([key, value]) => `${key} ${key === "since" || key === "until" ? utc(value, false) : value}`).join(", ") : "all faces";
    return el(
      "div",
      { class: "side", "data-side": side, "data-faces": summary.faces, "data-reliable": summary.reliable },
      el("b", {}, side.toUpperCase()),
      ` ${described}: ${plural(summary.faces, "face")} in ${plural(summary.images_with_faces, "image")}`,
      summary.reliable ? null : el("span", { class: "unreliable" }, " · not reliable yet"),
    );
  }

  function pointsText(difference) {
    const points = (value) => `${value >= 0 ? "+" : "−"}${Math.abs(value * 100).toFixed(1)}`;
    return `${points(difference.difference)} [${points(difference.interval[0])}, ${points(difference.interval[1])}] pts`;
  }

  /** Per emotion: A's and B's shares, and a - b drawn on a common axis around zero, raw and corrected. */
  function compareChart(body) {
    const [width, rowHeight, top] = [820, 34, 22];
    const columns = { name: 66, a: 190, b: 310, plotLeft: 335, plotRight: 545 };
    const extent = Math.max(
      0.05,
      ...config.emotions.flatMap((name) => {
        const { raw, corrected } = body.differences[name];
        return [raw, corrected].filter(Boolean).flatMap((d) => d.interval.map(Math.abs));
      }),
    );
    const x = (value) => columns.plotLeft + ((value + extent) / (2 * extent)) * (columns.plotRight - columns.plotLeft);
    const height = top + rowHeight * config.emotions.length + 6;
    const chart = svg("svg", { class: "compare", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "difference of shares between A and B, with 95 % intervals" });
    chart.append(
      svg("text", { class: "axis", x: columns.a, y: 12, "text-anchor": "end" }, "A share"),
      svg("text", { class: "axis", x: columns.b, y: 12, "text-anchor": "end" }, "B share"),
      svg("text", { class: "axis", x: x(0), y: 12, "text-anchor": "middle" }, "A − B"),
      svg("text", { class: "axis", x: columns.plotLeft, y: 12 }, `−${(extent * 100).toFixed(0)}`),
      svg("text", { class: "axis", x: columns.plotRight, y: 12, "text-anchor": "end" }, `+${(extent * 100).toFixed(0)} pts`),
      svg("line", { class: "zero", x1: x(0), x2: x(0), y1: top - 4, y2: height - 4 }),
    );
    config.emotions.forEach((emotion, index) => {
      const { raw, corrected } = body.differences[emotion];
      const a = body.a.emotions[emotion];
      const b = body.b.emotions[emotion];
      const y = top + index * rowHeight;
      const middle = y + rowHeight / 2;
      const row = svg(
        "g",
        {
          class: "difference",
          "data-emotion": emotion,
          "data-raw": raw.difference,
          "data-raw-low": raw.interval[0],
          "data-raw-high": raw.interval[1],
          "data-significant": raw.significant,
          "data-corrected": corrected ? corrected.difference : null,
          "data-corrected-significant": corrected ? corrected.significant : null,
        },
        svg("text", { class: "name", x: columns.name - 6, y: middle + 4, "text-anchor": "end" }, emotion),
        svg("text", { class: "value", x: columns.a, y: middle + 4, "text-anchor": "end" }, shareText(a.share, a.interval, body.a.reliable)),
        svg("text", { class: "value", x: columns.b, y: middle + 4, "text-anchor": "end" }, shareText(b.share, b.interval, body.b.reliable)),
        svg("line", { class: "interval", x1: x(raw.interval[0]), x2: x(raw.interval[1]), y1: middle - 4, y2: middle - 4, stroke: COLORS[emotion] }),
        svg("circle", { class: raw.significant ? "raw significant" : "raw", cx: x(raw.difference), cy: middle - 4, r: 4, stroke: COLORS[emotion], fill: raw.significant ? COLORS[emotion] : "#fff" }),
      );
      const texts = [`raw ${pointsText(raw)}${raw.significant ? " ≠" : ""}`];
      if (corrected) {
        const cy = middle + 6;
        const cx = x(corrected.difference);
        row.append(
          svg("line", { class: "corrected-interval", x1: x(corrected.interval[0]), x2: x(corrected.interval[1]), y1: cy, y2: cy }),
          svg("path", { class: corrected.significant ? "corrected significant" : "corrected open", d: `M${cx} ${cy - 4}L${cx + 4} ${cy}L${cx} ${cy + 4}L${cx - 4} ${cy}Z` }),
        );
        texts.push(`≈ ${pointsText(corrected)}${corrected.significant ? " ≠" : ""}`);
      }
      row.append(
        svg("text", { class: "value", x: columns.plotRight + 10, y: middle - 1 }, texts[0]),
        texts[1] ? svg("text", { class: "corrected-value", x: columns.plotRight + 10, y: middle + 11 }, texts[1]) : null,
        svg("title", {}, `${emotion}: A − B ${texts.join("; ")}; Holm-adjusted p ${raw.p_holm.toFixed(3)}${corrected ? ` (corrected ${corrected.p_holm.toFixed(3)})` : ""}`),
      );
      chart.append(row);
    });
    return chart;
  }

  function drawCompare(body) {
    const holder = document.getElementById("compare-chart");
    if (!body) {
      holder.replaceChildren(el("p", { class: "empty" }, "Choose what A and B are (a platform, a batch or dates for each) to compare their shares."));
      return;
    }
    const parts = [el("div", { class: "sides" }, sideCaption("a", body.a), sideCaption("b", body.b))];
    if (!body.a.faces || !body.b.faces) {
      parts.push(el("p", { class: "empty" }, `${!body.a.faces ? "A" : "B"} has no faces: nothing to compare.`));
    } else {
      if (!body.reliable) {
        parts.push(el("p", { class: "unreliable" }, `Not reliable yet: a set has fewer than ${body.statistics.min_images} images with faces. Read the intervals.`));
      }
      parts.push(
        compareChart(body),
        el(
          "div",
          { class: "legend" },
          el("span", {}, el("i", { class: "key-dot" }), "raw difference, 95 % interval"),
          body.statistics.corrected ? el("span", {}, el("i", { class: "key-corrected" }), `≈ corrected (${body.statistics.corrected.matrix})`) : null,
          el("span", {}, "filled, ≠: distinguishable from zero after Holm's correction for the seven emotions"),
        ),
      );
      const warning = matrixWarning(body.statistics);
      if (warning) parts.push(warning);
    }
    holder.replaceChildren(...parts);
  }

  // --- batches ------------------------------------------------------------------------------

  function progressBar(batch) {
    const finished = batch.done + batch.failed;
    const value = finished === batch.total ? 100 : Math.floor((100 * finished) / batch.total);
    const label = `${finished} / ${batch.total}${batch.failed ? ` · ${batch.failed} failed` : ""}`;
    return el(
      "div",
      {
        class: "progress",
        role: "progressbar",
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": value,
        "aria-label": `batch ${batch.id}: ${label}`,
      },
      el("span", { class: "done", style: `width: ${(100 * batch.done) / batch.total}%` }),
      el("span", { class: "failed", style: `width: ${(100 * batch.failed) / batch.total}%` }),
      el("b", {}, label),
    );
  }

  function batchStatus(batch) {
    if (batch.status === "done" && batch.failed === batch.total) return ["failed", "failed"];
    if (batch.status === "done") return ["done", batch.failed ? "done, some failed" : "done"];
    return [batch.status, batch.status];
  }

  async function loadFailures(details, batch) {
    const list = details.querySelector("ul");
    try {
      const body = await api(`/api/v1/batches/${batch.id}/images?status=failed&per_page=20`);
      list.replaceChildren(
        ...body.items.map((image) =>
          el(
            "li",
            {},
            el("a", { href: `/images/${image.id}` }, image.url),
            " — ",
            el("code", {}, image.error ? image.error.code : "?"),
            image.error && image.error.message ? `: ${image.error.message}` : "",
          ),
        ),
      );
      if (body.total > body.items.length) list.append(el("li", {}, `… and ${body.total - body.items.length} more`));
    } catch (error) {
      list.replaceChildren(el("li", {}, `could not load the failures: ${error.message}`));
    }
  }

  function failureDetails(batch) {
    const allFailed = batch.status === "done" && batch.failed === batch.total;
    const details = el(
      "details",
      { class: "failures", "data-batch-id": batch.id },
      el("summary", {}, allFailed ? `Every image in this batch failed. Why:` : `${batch.failed} failed: why?`),
      el("ul", {}, el("li", {}, "loading…")),
    );
    details.addEventListener("toggle", () => {
      if (details.open) {
        openFailures.add(batch.id);
        loadFailures(details, batch);
      } else {
        openFailures.delete(batch.id);
      }
    });
    if (allFailed || openFailures.has(batch.id)) details.open = true;
    return details;
  }

  function drawBatches(body) {
    const holder = document.getElementById("batches");
    document.getElementById("batches-caption").textContent = body.items.length ? `latest ${body.items.length}` : "";
    if (!body.items.length) {
      holder.replaceChildren(el("p", { class: "empty" }, emptyText("No batches yet: submit URLs or photos.")));
      return;
    }
    const rows = body.items.flatMap((batch) => {
      const [status, statusText] = batchStatus(batch);
      const row = el(
        "tr",
        { "data-batch-id": batch.id, "data-status": status },
        el(
          "td",
          {},
          el("a", { href: `?${new URLSearchParams({ batch_id: batch.id })}`, class: "batch-link", "data-batch-id": batch.id, title: "show only this batch" }, batch.name || `batch ${batch.id}`),
          el("small", {}, ` #${batch.id}${batch.platform ? ` · ${batch.platform}` : ""}`),
        ),
        el("td", { class: "when" }, utc(batch.created_at)),
        el("td", {}, progressBar(batch)),
        el("td", { class: "num" }, number(batch.faces)),
        el("td", {}, el("span", { class: `badge ${status}` }, statusText)),
      );
      if (!batch.failed) return [row];
      return [row, el("tr", { class: "failures-row" }, el("td", { colspan: 5 }, failureDetails(batch)))];
    });
    const table = el(
      "table",
      { class: "batches" },
      el("thead", {}, el("tr", {}, ["batch", "created", "progress (done / total)", "faces", "status"].map((name) => el("th", {}, name)))),
      el("tbody", {}, rows),
    );
    holder.replaceChildren(table);
  }

  // --- images, headline, notices ------------------------------------------------------------

  function drawImages(body) {
    const holder = document.getElementById("thumbnails");
    if (!body.items.length) {
      holder.replaceChildren(el("p", { class: "empty" }, emptyText("No analysed images yet.")));
      return;
    }
    holder.replaceChildren(
      ...body.items.map((image) =>
        el(
          "a",
          { class: "thumb", href: `/images/${image.id}`, "data-image-id": image.id, "data-platform": image.platform, "data-faces": image.faces.length },
          annotatedImage(image),
          el("span", { class: "caption" }, `${image.platform} · ${plural(image.faces.length, "face")}`),
        ),
      ),
    );
  }

  function drawHeadline(stats, queue) {
    const values = { images: stats.images, images_with_faces: stats.images_with_faces, faces: stats.faces, failed: queue.images.failed };
    for (const [name, value] of Object.entries(values)) {
      const node = document.querySelector(`[data-metric="${name}"]`);
      node.textContent = number(value);
      node.classList.toggle("zero", value === 0);
    }
    const flagged = [
      stats.low_resolution ? `${number(stats.low_resolution)} low resolution` : null,
      stats.uncertain ? `${number(stats.uncertain)} uncertain` : null,
    ].filter(Boolean);
    const note = document.getElementById("faces-note");
    note.replaceChildren(
      ...(flagged.length ? [el("span", { class: "flagged" }, `of which ${flagged.join(", ")}`)] : []),
      ...(stats.faces_left_out ? [el("span", { class: "left-out", "data-left-out": stats.faces_left_out }, `${plural(stats.faces_left_out, "face")} left out by the face filters`)] : []),
    );
  }

  function filtered() {
    return Object.keys(filters).length > 0;
  }

  function emptyText(text) {
    return filtered() ? "Nothing matches these filters." : text;
  }

  function drawNotices(stats, queue, batches) {
    const worker = queue.worker;
    notice(
      "worker-notice",
      "warning",
      worker.state === "stalled"
        ? [
            `${plural(worker.queued, "image")} waiting since ${utc(worker.oldest_queued_at)}, and `,
            worker.last_finished_at ? `none finished since ${utc(worker.last_finished_at)}` : "none has finished yet",
            ": no worker seems to be running. Start one with ",
            el("code", {}, "socialfer worker"),
            " (",
            el("code", {}, "socialfer serve"),
            " starts one itself on the embedded broker).",
          ]
        : null,
    );
    const nothing = !stats.images && !Object.values(queue.images).some(Boolean) && !batches.items.length;
    let empty = null;
    if (nothing && filtered()) {
      empty = ["Nothing matches these filters. ", el("a", { href: location.pathname, class: "clear" }, "Clear filters")];
    } else if (nothing) {
      empty = "No data yet. Paste image URLs or upload photos under Submit: results appear here as the workers finish them.";
    }
    notice("empty-notice", "info", empty);
  }

  /** Redraw a panel only when its data changed: thumbnails do not flicker and open details stay open. */
  function draw(panel, data, painter) {
    const key = JSON.stringify(data);
    if (drawn[panel] === key) return;
    drawn[panel] = key;
    painter(data);
  }

  // --- the refresh loop ---------------------------------------------------------------------

  async function refresh() {
    clearTimeout(timer);
    const mine = ++sequence;
    const search = query();
    let active = false;
    try {
      const comparing = Object.keys(compareSets).length > 0;
      const [stats, queue, timeline, batches, images, comparison] = await Promise.all([
        api(`/api/v1/stats?${search}`),
        api(`/api/v1/queue?${search}`),
        api(`/api/v1/timeline?${search}`),
        api(`/api/v1/batches?${query({ limit: BATCHES_SHOWN })}`),
        api(`/api/v1/images?${query({ status: "done", limit: RECENT_IMAGES })}`),
        comparing ? api(`/api/v1/compare?${query(compareSets)}`) : null,
      ]);
      if (mine !== sequence) return;
      draw("headline", [stats, queue.images], () => drawHeadline(stats, queue));
      draw("emotions", [stats, search], () => drawEmotions(stats));
      draw("platforms", stats, drawPlatforms);
      draw("timeline", [timeline, search], () => drawTimeline(timeline));
      draw("batches", [batches, search], () => drawBatches(batches));
      draw("images", [images, search], () => drawImages(images));
      draw("compare", [comparison, search], () => drawCompare(comparison));
      drawNotices(stats, queue, batches);
      notice("api-notice", "error", null);
      const busy = batches.items.some((batch) => batch.status !== "done") || ["working", "waiting"].includes(queue.worker.state);
      active = busy || wasActive;
      wasActive = busy;
      refreshes += 1;
      Object.assign(document.body.dataset, { state: "ready", query: search, compare: query(compareSets), refreshes });
    } catch (error) {
      if (mine !== sequence) return;
      if (error.status === 401) {
        notice("api-notice", "error", [
          "This server keeps its data behind API keys: ",
          el("a", { href: "/signin" }, "sign in"),
          " with a key to see it.",
        ]);
        document.body.dataset.state = "signed-out";
        return;
      }
      notice("api-notice", "error", [
        `The API did not answer (${error.message}). Is `,
        el("code", {}, "socialfer serve"),
        " running? Retrying every few seconds.",
      ]);
      document.body.dataset.state = "error";
    }
    timer = setTimeout(refresh, active ? ACTIVE_POLL_MS : IDLE_POLL_MS);
  }

  // --- submitting ---------------------------------------------------------------------------

  function say(id, kind, message) {
    const box = document.getElementById(id);
    box.className = `form-message ${kind}`;
    box.replaceChildren(...(Array.isArray(message) ? message : [message]));
  }

  function failureText(error) {
    if (error.status === 401) return "This server needs an API key to submit: sign in (top right) with a write key.";
    if (error.status === 403) return `Not allowed: ${error.message}`;
    if (error.code === "broker_unavailable") return `${error.message} (is the broker running?)`;
    return error.message;
  }

  async function submitted(messageId, batch, what) {
    say(messageId, "ok", [`Batch #${batch.id} queued: ${plural(batch.total, what)}. Its progress is under Batches.`]);
    await loadBatchChoices();
    refresh();
  }

  async function submitUrls(event) {
    event.preventDefault();
    const lines = document.getElementById("urls").value.split(/\r?\n/);
    const urls = [];
    const lineNumbers = [];
    lines.forEach((line, index) => {
      if (line.trim()) {
        urls.push(line.trim());
        lineNumbers.push(index + 1);
      }
    });
    if (!urls.length) return say("url-message", "error", "Paste at least one image URL, one per line.");
    if (urls.length > config.max_batch_urls) {
      return say("url-message", "error", `At most ${config.max_batch_urls} URLs per batch; this has ${urls.length}.`);
    }
    const body = { urls };
    const platform = document.getElementById("url-platform").value;
    const name = document.getElementById("url-name").value;
    if (platform) body.platform = platform;
    if (name.trim()) body.name = name;
    say("url-message", "", "Submitting…");
    try {
      const batch = await api("/api/v1/batches", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      document.getElementById("urls").value = "";
      await submitted("url-message", batch, "URL");
    } catch (error) {
      // "urls[2]: ..." names the index among non-empty lines; the analyst counts lines.
      const text = failureText(error).replace(/^urls\[(\d+)\]/, (_, index) => `line ${lineNumbers[Number(index)]}`);
      say("url-message", "error", text);
    }
  }

  async function uploadPhotos(event) {
    event.preventDefault();
    const input = document.getElementById("upload-files");
    const files = [...input.files];
    if (!files.length) return say("upload-message", "error", "Choose one or more photos first.");
    const tooLarge = files.find((file) => file.size > config.max_image_bytes);
    if (tooLarge) {
      return say("upload-message", "error", `${tooLarge.name} is larger than the ${number(config.max_image_bytes)} bytes allowed per image.`);
    }
    const form = new FormData();
    files.forEach((file) => form.append("files", file, file.name));
    const platform = document.getElementById("upload-platform").value;
    const name = document.getElementById("upload-name").value;
    if (platform) form.append("platform", platform);
    if (name.trim()) form.append("name", name);
    say("upload-message", "", `Uploading ${plural(files.length, "photo")}…`);
    try {
      const batch = await api("/api/v1/uploads", { method: "POST", body: form });
      input.value = "";
      await submitted("upload-message", batch, "photo");
    } catch (error) {
      say("upload-message", "error", failureText(error));
    }
  }

  // --- wiring -------------------------------------------------------------------------------

  document.getElementById("filters").addEventListener("change", controlsChanged);
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("clear-filters").addEventListener("click", (event) => {
    event.preventDefault();
    setFilters({});
  });
  document.getElementById("notices").addEventListener("click", (event) => {
    if (event.target.matches("a.clear")) {
      event.preventDefault();
      setFilters({});
    }
  });
  document.getElementById("batches").addEventListener("click", (event) => {
    const link = event.target.closest("a.batch-link");
    if (link) {
      event.preventDefault();
      setFilters({ ...filters, batch_id: link.dataset.batchId });
    }
  });
  document.getElementById("compare-form").addEventListener("change", compareChanged);
  document.getElementById("compare-form").addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("clear-compare").addEventListener("click", (event) => {
    event.preventDefault();
    setCompare({});
  });
  document.getElementById("url-form").addEventListener("submit", submitUrls);
  document.getElementById("upload-form").addEventListener("submit", uploadPhotos);
  SF.canWrite().then((allowed) => {
    if (allowed) return;
    for (const form of document.querySelectorAll("#submit-panel form")) form.hidden = true;
    document.getElementById("submit-denied").hidden = false;
  });
  window.addEventListener("popstate", () => {
    filters = readFilters();
    compareSets = readCompare();
    syncControls();
    refresh();
  });

  syncControls();
  loadBatchChoices();
  refresh();
})();
