/* kgdx clinician viewer (docs/viewer.md).
 *
 * Reads everything through the keyed /v1 REST API. The API key is asked for once and kept in
 * sessionStorage (this tab only; never in a URL, never in localStorage); every call sends it as
 * "Authorization: Bearer <key>". All text from the API is inserted with textContent, never as
 * HTML. Graphs: cytoscape with the dagre layout (vendored in /viewer/static/vendor).
 */
(function () {
  "use strict";

  var API = "/v1";
  var KEY_STORE = "kgdx.apiKey";
  var STATUS_TAG = { absent: "absent", possible: "possible", historical: "history" };

  var state = {
    key: null,
    patient: null,
    names: {},        // concept id -> name (from the graph and the diagnoses)
    kinds: {},        // concept id -> kind
    diagnoses: [],
    selected: -1,
    cy: null,
  };

  // ------------------------------------------------------------------ small helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "text") node.textContent = value;
        else if (name === "className") node.className = value;
        else node.setAttribute(name, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function percent(p) {
    if (typeof p !== "number" || !isFinite(p)) return "?";
    return (p * 100).toFixed(p >= 0.1 ? 0 : 1) + "%";
  }

  function showMessage(text, kind) {
    var box = $("message");
    box.textContent = text || "";
    box.className = "message" + (kind ? " " + kind : "");
    box.hidden = !text;
  }

  function nameOf(id) { return state.names[id] || id; }

  // ------------------------------------------------------------------ the key and the API
  function loadKey() {
    try { return window.sessionStorage.getItem(KEY_STORE); } catch (e) { return null; }
  }

  function saveKey(key) {
    state.key = key;
    try {
      if (key) window.sessionStorage.setItem(KEY_STORE, key);
      else window.sessionStorage.removeItem(KEY_STORE);
    } catch (e) { /* storage disabled: the key lives in this page only */ }
    updateKeyStatus();
  }

  function updateKeyStatus() {
    $("key-status").textContent = state.key ? "key set for this tab" : "";
    $("forget-key").hidden = !state.key;
  }

  function ApiError(status, detail) {
    this.status = status;
    this.message = detail;
  }

  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = "Bearer " + state.key;
    var init = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (response) {
      if (response.status === 204) return null;
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) {
          var detail = (data && (data.detail || data.title)) || response.statusText;
          throw new ApiError(response.status, typeof detail === "string" ? detail : response.statusText);
        }
        return data;
      });
    });
  }

  /* A same-origin URL of the API (an image thumbnail), fetched with the key as a blob. */
  function apiBlob(url) {
    if (!/^\/v1\//.test(url)) return Promise.reject(new ApiError(0, "not an API URL"));
    var headers = {};
    if (state.key) headers.Authorization = "Bearer " + state.key;
    return fetch(url, { headers: headers, credentials: "omit" }).then(function (response) {
      if (!response.ok) throw new ApiError(response.status, response.statusText);
      return response.blob();
    });
  }

  function enc(id) { return encodeURIComponent(id); }

  /* A 401 asks for a (new) key and retries; anything else is shown. */
  function handleError(error, retry) {
    if (error instanceof ApiError && error.status === 401) {
      var hadKey = Boolean(state.key);
      saveKey(null);
      askForKey(hadKey ? "That key was not accepted: " + error.message : "", retry);
      return;
    }
    if (error instanceof ApiError && error.status === 403) {
      showMessage("Your key's role may not do this: " + error.message, "error");
      return;
    }
    showMessage(error && error.message ? error.message : String(error), "error");
  }

  function askForKey(message, then) {
    $("key-panel").hidden = false;
    $("patients-panel").hidden = true;
    $("patient-view").hidden = true;
    showMessage(message, message ? "error" : "");
    var input = $("key-input");
    input.value = "";
    input.focus();
    $("key-form").onsubmit = function (event) {
      event.preventDefault();
      var key = input.value.trim();
      if (!key) return;
      input.value = "";
      saveKey(key);
      $("key-panel").hidden = true;
      showMessage("");
      then();
    };
  }

  // ------------------------------------------------------------------ shape adapters
  // The page accepts the v1 shapes and the graph.records ones they are built from.
  function patientOf(data) { return data && data.patient ? data.patient : data; }

  function patientIdsOf(data) {
    var list = Array.isArray(data) ? data
      : data.patient_ids || data.items || data.patients || data.ids || [];
    return list.map(function (item) { return typeof item === "string" ? item : item.id; });
  }

  /* The diagnoses of one model: the stored list holds every model's, by model then rank; the
     page shows the most recently made set (by "created", else the first model listed). */
  function latestModel(list) {
    var best = null;
    var bestTime = "";
    list.forEach(function (d) {
      var time = d.created || "";
      if (best === null || time > bestTime) { best = d.model_id || ""; bestTime = time; }
    });
    return list.filter(function (d) { return (d.model_id || "") === best; });
  }

  function diagnosesOf(data) {
    var list = Array.isArray(data) ? data : (data && (data.diagnoses || data.items)) || [];
    var meta = Array.isArray(data) || !data ? {} : data;
    return latestModel(list).map(function (d) {
      return Object.assign({}, d, {
        model_id: d.model_id || meta.model_id || "",
        kg_release: d.kg_release || meta.kg_release || "",
      });
    });
  }

  function learnGraph(data) {
    if (!data) return;
    var nodes = data.nodes || (data.elements && data.elements.nodes) || [];
    nodes.forEach(function (n) {
      var d = n.data || n;
      var name = d.name || d.label;
      if (d.id && name) state.names[d.id] = name;
      if (d.id && d.kind) state.kinds[d.id] = d.kind;
    });
  }

  function learnDiagnosisNames(diagnoses) {
    diagnoses.forEach(function (d) {
      if (d.concept_id && d.name) state.names[d.concept_id] = d.name;
      (d.paths || []).forEach(function (path) {
        (path.node_names || []).forEach(function (name, i) {
          var id = path.nodes[i];
          if (id && name && !state.names[id]) state.names[id] = name;
        });
      });
    });
  }

  // v1 gives the assertion as one word ("present", "absent", "possible", "historical") with the
  // experiencer beside it; graph.records as {polarity, certainty, temporality, experiencer}.
  function findingStatus(f) {
    if (typeof f.assertion === "string") return f.assertion;
    var a = f.assertion || {};
    if (a.polarity === "absent") return "absent";
    if (a.certainty === "possible") return "possible";
    if (a.temporality === "historical") return "historical";
    return "present";
  }

  function isPhenotype(id) { return /^HP:/.test(id || ""); }

  /* The HPO id a finding was given as: its concept's, or the code a coded finding was sent with
     (the default KG merges many HPO terms into UMLS concepts); "" when neither is one. */
  function phenotypeCode(f) {
    if (isPhenotype(f.concept_id)) return f.concept_id;
    var sent = (f.provenance && f.provenance.text) || ""; // a coded line's span is the code
    return /^HP:\d{7}$/.test(sent) ? sent : "";
  }

  function statusWords(f) {
    var status = findingStatus(f);
    if (phenotypeCode(f)) {
      if (status === "absent") return "excluded term";
      if (status === "present") return "observed term";
    }
    var words = status;
    if (experiencerOf(f) === "family") words += " (family member)";
    return words;
  }

  function experiencerOf(f) {
    return f.experiencer || (f.assertion && f.assertion.experiencer) || "patient";
  }

  function learnFindingNames(patient) {
    ((patient && patient.findings) || []).forEach(function (f) {
      if (f.name && f.concept_id && !state.names[f.concept_id]) state.names[f.concept_id] = f.name;
    });
  }

  function provenanceKind(f) { return (f.provenance && f.provenance.kind) || "coded"; }

  // ------------------------------------------------------------------ start page
  var PAGE_SIZE = 1000;
  var MAX_LISTED = 20000; // beyond this, type the id

  /* Every stored id, a page at a time (v1 answers {items, total, offset, limit}). */
  function allPatientIds(offset, found) {
    return api("GET", "/patients?offset=" + offset + "&limit=" + PAGE_SIZE).then(function (data) {
      var ids = found.concat(patientIdsOf(data || []));
      var total = data && typeof data.total === "number" ? data.total : ids.length;
      var more = ids.length < total && ids.length > found.length && ids.length < MAX_LISTED;
      return more ? allPatientIds(offset + PAGE_SIZE, ids) : { ids: ids, total: total };
    });
  }

  function showPatientList() {
    $("patient-title").textContent = "";
    document.title = "kgdx viewer: patients";
    var retry = function () { showPatientList(); };
    allPatientIds(0, []).then(function (found) {
      var ids = found.ids;
      $("patients-panel").hidden = false;
      var list = $("patient-list");
      var filter = $("patient-filter");
      var draw = function () {
        clear(list);
        var q = filter.value.trim().toLowerCase();
        var shown = ids.filter(function (id) { return !q || id.toLowerCase().indexOf(q) >= 0; });
        shown.forEach(function (id) {
          list.appendChild(el("li", null, [el("a", { href: "/patients/" + enc(id), text: id })]));
        });
        var count = shown.length + " of " + found.total + " patients";
        if (ids.length < found.total) count += " (the first " + ids.length + " listed; type an id and press Enter)";
        $("patient-count").textContent = count;
      };
      filter.oninput = draw;
      filter.onkeydown = function (event) { // Enter opens the typed id, or the only match
        if (event.key !== "Enter") return;
        var q = filter.value.trim();
        var matches = ids.filter(function (id) { return id.toLowerCase().indexOf(q.toLowerCase()) >= 0; });
        var target = ids.indexOf(q) >= 0 || ids.length < found.total ? q : matches.length === 1 ? matches[0] : "";
        if (target) window.location.assign("/patients/" + enc(target));
      };
      draw();
      filter.focus();
    }).catch(function (error) { handleError(error, retry); });
  }

  // ------------------------------------------------------------------ patient page
  function showPatient(patientId) {
    $("patient-title").textContent = "Patient " + patientId;
    document.title = "kgdx viewer: " + patientId;
    var retry = function () { showPatient(patientId); };
    var base = "/patients/" + enc(patientId);
    api("GET", base).then(function (data) {
      state.patient = patientOf(data);
      learnFindingNames(state.patient);
      return api("GET", base + "/graph").then(learnGraph, function (error) {
        if (error instanceof ApiError && error.status === 401) throw error;
        return null; // names fall back to the diagnoses' and the ids
      });
    }).then(function () {
      $("patient-view").hidden = false;
      renderPatient(state.patient);
      return loadDiagnoses(base, false);
    }).catch(function (error) { handleError(error, retry); });

    $("rerun").onclick = function () {
      loadDiagnoses(base, true).catch(function (error) { handleError(error, retry); });
    };
  }

  function loadDiagnoses(base, rerun) {
    var list = $("diagnosis-list");
    var run = function () {
      clear(list);
      list.appendChild(el("li", { className: "hint", text: "Running the model\u2026" }));
      // the re-run button asks for a fresh model run (the server may answer a repeat from memo)
      return api("POST", base + "/diagnoses?top_k=5&paths_per_diagnosis=3" + (rerun ? "&refresh=true" : ""));
    };
    var first = rerun ? run() : api("GET", base + "/diagnoses").then(function (data) {
      return diagnosesOf(data).length ? data : run();
    });
    return first.then(function (data) {
      state.diagnoses = diagnosesOf(data);
      learnDiagnosisNames(state.diagnoses);
      renderPatient(state.patient); // the names may be known now
      renderDiagnoses();
    });
  }

  function renderPatient(patient) {
    renderReports(patient);
    renderLabs(patient);
    renderFindingTable(patient);
    renderImages(patient);
  }

  // --- report text with its findings marked
  function renderReports(patient) {
    var box = $("reports");
    clear(box);
    var reports = patient.reports || [];
    if (!reports.length) box.appendChild(el("p", { className: "hint", text: "No report text." }));
    reports.forEach(function (report) {
      var spans = (patient.findings || []).filter(function (f) {
        return provenanceKind(f) === "text" && (f.provenance.doc_id === report.id ||
          f.provenance.doc_id === patient.id + "/" + report.id);
      });
      var head = el("h3", { className: "report-id", text: report.id + (report.date ? " \u00b7 " + report.date : "") });
      box.appendChild(head);
      box.appendChild(el("div", { className: "report-text" }, markText(report.text, spans)));
    });
  }

  function locate(text, f) {
    var p = f.provenance;
    if (typeof p.start === "number" && text.slice(p.start, p.end) === p.text) return [p.start, p.end];
    var at = p.sentence ? text.indexOf(p.sentence) : -1;
    var inner = at >= 0 ? text.indexOf(p.text, at) : text.indexOf(p.text);
    return inner >= 0 && p.text ? [inner, inner + p.text.length] : null;
  }

  function markText(text, findings) {
    var spans = [];
    findings.forEach(function (f) {
      var where = locate(text, f);
      if (!where) return;
      var same = spans.filter(function (s) { return s.start === where[0] && s.end === where[1]; })[0];
      if (same) same.findings.push(f);
      else spans.push({ start: where[0], end: where[1], findings: [f] });
    });
    spans.sort(function (a, b) { return a.start - b.start || b.end - a.end; });
    var out = [];
    var at = 0;
    spans.forEach(function (span) {
      if (span.start < at) return; // overlaps an earlier mark: keep the first
      if (span.start > at) out.push(text.slice(at, span.start));
      out.push(findingMark(text.slice(span.start, span.end), span.findings));
      at = span.end;
    });
    if (at < text.length) out.push(text.slice(at));
    return out;
  }

  function findingMark(surface, findings) {
    var f = findings[0];
    var status = findingStatus(f);
    var family = experiencerOf(f) === "family";
    var label = findings.map(function (x) {
      return nameOf(x.concept_id) + " (" + x.concept_id + "): " + statusWords(x);
    }).join("; ");
    var section = f.provenance.section ? " \u00b7 section " + f.provenance.section : "";
    var mark = el("mark", {
      className: "finding",
      "data-status": status,
      "data-experiencer": family ? "family" : null,
      "data-concept": f.concept_id,
      tabindex: "0",
      title: label + section,
      "aria-label": surface + ": " + label,
    }, [surface]);
    var tag = STATUS_TAG[status] || (family ? "family" : null);
    if (tag) mark.appendChild(el("span", { className: "tag", "aria-hidden": "true", text: tag }));
    return mark;
  }

  function renderLabs(patient) {
    var box = $("labs");
    clear(box);
    var labs = patient.labs || [];
    if (!labs.length) return;
    var body = el("tbody");
    labs.forEach(function (lab) {
      var value = lab.value === null || lab.value === undefined ? "" : String(lab.value);
      body.appendChild(el("tr", null, [
        el("td", { text: lab.name || lab.code || "" }),
        el("td", { text: value + (lab.unit ? " " + lab.unit : "") }),
        el("td", { text: lab.interpretation || "" }),
      ]));
    });
    box.appendChild(el("h3", { text: "Labs" }));
    box.appendChild(el("div", { className: "table-wrap" }, [el("table", null, [
      el("thead", null, [el("tr", null, [el("th", { scope: "col", text: "Test" }),
        el("th", { scope: "col", text: "Value" }), el("th", { scope: "col", text: "Interpretation" })])]),
      body,
    ])]));
  }

  function renderFindingTable(patient) {
    var body = $("findings-table").tBodies[0];
    clear(body);
    var findings = patient.findings || [];
    $("finding-count").textContent = String(findings.length);
    findings.forEach(function (f) {
      var p = f.provenance || {};
      var kind = provenanceKind(f);
      var source = kind === "text" ? "report" + (p.section ? ", " + p.section : "")
        : kind === "image" ? "image " + p.image_id : kind;
      var evidence = kind === "text" ? "\u201c" + (p.sentence || p.text) + "\u201d"
        : kind === "image" ? "P = " + p.probability.toFixed(2) + " (" + p.model_id + ")" : "";
      body.appendChild(el("tr", { "data-status": findingStatus(f) }, [
        el("td", null, [nameOf(f.concept_id), el("br"), el("small", { text: f.concept_id })]),
        el("td", null, [el("span", { className: "status-chip", "data-status": findingStatus(f), text: statusWords(f) })]),
        el("td", { text: source }),
        el("td", { text: evidence }),
      ]));
    });
  }

  // --- image findings with their probabilities and a thumbnail
  function renderImages(patient) {
    var box = $("images");
    clear(box);
    var byImage = {};
    (patient.findings || []).forEach(function (f) {
      if (provenanceKind(f) !== "image") return;
      (byImage[f.provenance.image_id] = byImage[f.provenance.image_id] || []).push(f);
    });
    var images = (patient.images || []).slice();
    var known = images.map(function (i) { return i.id; });
    Object.keys(byImage).forEach(function (id) { if (known.indexOf(id) < 0) images.push({ id: id }); });
    $("images-panel").hidden = !images.length;
    images.forEach(function (image) {
      var imageId = image.id;
      var figure = el("figure", { className: "image-card" });
      var thumb = el("div", { className: "thumb", text: "no thumbnail stored" });
      figure.appendChild(thumb);
      // v1 names the thumbnail's URL (null: none stored); a records-shaped image has no field
      var url = image.thumbnail === undefined
        ? API + "/patients/" + enc(patient.id) + "/images/" + enc(imageId) + "/thumbnail"
        : image.thumbnail;
      if (url) loadThumbnail(url, imageId, thumb);
      var rows = (byImage[imageId] || []).slice().sort(function (a, b) {
        return b.provenance.probability - a.provenance.probability;
      });
      var list = el("ul", { className: "image-findings" });
      rows.forEach(function (f) {
        var p = f.provenance;
        var scope = p.scope && p.scope !== "in_scope" ? " \u00b7 " + p.scope.replace(/_/g, " ") : "";
        list.appendChild(el("li", { title: p.scope_reason || null }, [
          el("span", { className: "image-finding-name", text: nameOf(f.concept_id) }),
          probabilityBar(p.probability, nameOf(f.concept_id)),
          el("small", { text: p.model_id + scope }),
        ]));
      });
      if (!rows.length) list.appendChild(el("li", { className: "hint", text: "no findings read" }));
      var title = imageId + (image.modality ? " \u00b7 " + image.modality : "");
      figure.appendChild(el("figcaption", null, [el("strong", { text: title }), list]));
      box.appendChild(figure);
    });
  }

  function loadThumbnail(url, imageId, box) {
    apiBlob(url)
      .then(function (blob) {
        if (!/^image\//.test(blob.type)) return;
        clear(box);
        box.appendChild(el("img", { src: URL.createObjectURL(blob), alt: "thumbnail of image " + imageId }));
      })
      .catch(function () { box.textContent = "no thumbnail stored"; });
  }

  function probabilityBar(p, label) {
    var width = Math.max(0, Math.min(1, p || 0)) * 100;
    var bar = el("span", { className: "bar", role: "meter", "aria-valuemin": "0",
      "aria-valuemax": "1", "aria-valuenow": String(p), "aria-label": label + " probability" });
    var fill = el("span", { className: "fill" });
    fill.style.width = width.toFixed(1) + "%";
    bar.appendChild(fill);
    return el("span", { className: "bar-row" }, [bar, el("span", { className: "pct", text: percent(p) })]);
  }

  // --- ranked diagnoses
  function renderDiagnoses() {
    var list = $("diagnosis-list");
    clear(list);
    var ds = state.diagnoses;
    var info = "";
    if (ds.length) {
      var d0 = ds[0];
      info = "model " + (d0.model_id || "?");
      if (d0.kg_release) info += " \u00b7 KG " + d0.kg_release;
      if (d0.input_sections && d0.input_sections.exclude && d0.input_sections.exclude.length) {
        info += " \u00b7 read every report section except " + d0.input_sections.exclude.join(", ");
      }
      info += " \u00b7 calibrated probabilities";
    }
    $("model-info").textContent = info;
    if (!ds.length) list.appendChild(el("li", { className: "hint", text: "No diagnoses." }));
    ds.forEach(function (d, i) {
      var button = el("button", {
        type: "button", className: "dx", "data-index": String(i), "data-concept": d.concept_id,
        "aria-pressed": "false",
      }, [
        el("span", { className: "dx-rank", text: String(i + 1) }),
        el("span", { className: "dx-name", text: d.name || nameOf(d.concept_id) }),
        probabilityBar(d.probability, d.name || d.concept_id),
        el("span", { className: "dx-paths", text: (d.paths || []).length + " path" + ((d.paths || []).length === 1 ? "" : "s") }),
      ]);
      button.addEventListener("click", function () { selectDiagnosis(i, true); });
      button.addEventListener("keydown", function (event) {
        var step = event.key === "ArrowDown" ? 1 : event.key === "ArrowUp" ? -1 : 0;
        if (!step) return;
        event.preventDefault();
        var next = list.querySelectorAll("button.dx")[i + step];
        if (next) next.focus();
      });
      list.appendChild(el("li", null, [button]));
    });
    if (ds.length) selectDiagnosis(state.selected >= 0 && state.selected < ds.length ? state.selected : 0, false);
  }

  function selectDiagnosis(index, moveFocus) {
    state.selected = index;
    var d = state.diagnoses[index];
    Array.prototype.forEach.call(document.querySelectorAll("button.dx"), function (b, i) {
      b.setAttribute("aria-pressed", i === index ? "true" : "false");
    });
    $("selected-name").textContent = (d.name || nameOf(d.concept_id)) + " (" + percent(d.probability) + ")";
    drawPaths(d);
    if (moveFocus) $("paths-heading").scrollIntoView({ block: "nearest" });
  }

  // --- explanation paths: steps with their evidence
  function stepsOf(path) {
    if (Array.isArray(path.steps) && path.steps.length) {
      return path.steps.map(function (s) {
        return { src: s.src, relation: s.relation, dst: s.dst, evidence: s.evidence || "" };
      });
    }
    var steps = [];
    var evidence = path.evidence || [];
    var aligned = evidence.length === path.relations.length;
    for (var i = 0; i < path.relations.length; i++) {
      steps.push({
        src: path.nodes[i], relation: path.relations[i], dst: path.nodes[i + 1],
        evidence: aligned ? evidence[i] : (i === path.relations.length - 1 ? evidence.join(" \u00b7 ") : ""),
      });
    }
    return steps;
  }

  function patientFinding(conceptId, evidence) {
    var all = ((state.patient && state.patient.findings) || []).filter(function (f) {
      return f.concept_id === conceptId;
    });
    var quoted = all.filter(function (f) {
      return provenanceKind(f) === "text" && evidence && evidence.indexOf(f.provenance.sentence) >= 0;
    });
    return quoted[0] || all[0] || null;
  }

  /* The engine's first-step evidence reads 'observed: "<sentence>" (<section>); model: supports
     the diagnosis (occlusion +1.23)' (or 'excluded: ...'); older stored paths hold the quoted
     sentence alone. */
  function splitEvidence(text) {
    var out = { said: "", model: "", rest: text || "" };
    var m = /;\s*model:\s*/.exec(out.rest);
    if (m) { out.model = out.rest.slice(m.index + m[0].length); out.rest = out.rest.slice(0, m.index); }
    var s = /^(observed|excluded)\s*:\s*/i.exec(out.rest);
    if (s) { out.said = s[1].toLowerCase(); out.rest = out.rest.slice(s[0].length); }
    return out;
  }

  function isAbsentRelation(relation) { return /ABSENT/i.test(relation || ""); }

  /* What a step shows: the sentence, the image probability, the KG source, the observed or
     excluded term and what the model made of it. */
  function stepDetail(step, pathIndex, stepIndex) {
    var items = [];
    var kind = "kg";
    if (stepIndex === 0) {
      kind = "finding";
      var ev = splitEvidence(step.evidence);
      var finding = patientFinding(step.dst, step.evidence);
      var conceptId = finding ? finding.concept_id : step.dst;
      items.push(["Finding", nameOf(conceptId) + " (" + conceptId + ")"]);
      var said = ev.said || (isAbsentRelation(step.relation) ? "excluded" : "");
      var code = finding ? phenotypeCode(finding) : (isPhenotype(conceptId) ? conceptId : "");
      if (said) items.push(code ? ["Term", said + " term " + code] : ["Observed / excluded", said]);
      if (finding) {
        var p = finding.provenance || {};
        var pk = provenanceKind(finding);
        items.push(["Assertion", statusWords(finding)]);
        if (pk === "text") {
          items.push(["Sentence", "\u201c" + p.sentence + "\u201d"]);
          if (p.section) items.push(["Section", p.section]);
        } else if (pk === "image") {
          kind = "image";
          items.push(["Image", p.image_id]);
          items.push(["Image probability", p.probability.toFixed(2) + " (model " + p.model_id + ")"]);
        }
        var quoted = pk === "text" && p.sentence && ev.rest.indexOf(p.sentence) >= 0;
        if (ev.rest && !quoted) items.push(["Evidence", ev.rest]);
      } else if (ev.rest) {
        items.push(["Evidence", ev.rest]);
      }
      if (ev.model) items.push(["Model", ev.model]);
    } else {
      var source = /^KG:\s*/.test(step.evidence) ? step.evidence.replace(/^KG:\s*/, "") : "";
      items.push(["KG relation", nameOf(step.src) + " \u2014" + step.relation + "\u2192 " + nameOf(step.dst)]);
      if (source) items.push(["KG source", source]);
      else if (step.evidence) items.push(["Evidence", step.evidence]);
    }
    return { kind: kind, title: "Path " + (pathIndex + 1) + ", step " + (stepIndex + 1) + ": " + step.relation, items: items };
  }

  function showDetail(detail) {
    var box = $("step-detail");
    clear(box);
    box.setAttribute("data-kind", detail.kind);
    box.appendChild(el("h3", { text: detail.title }));
    var dl = el("dl");
    detail.items.forEach(function (item) {
      dl.appendChild(el("dt", { text: item[0] }));
      dl.appendChild(el("dd", { text: item[1] }));
    });
    box.appendChild(dl);
  }

  function drawPaths(d) {
    var paths = d.paths || [];
    var list = $("path-list");
    clear(list);
    var box = $("step-detail");
    clear(box);
    box.appendChild(el("p", { className: "hint", text: paths.length
      ? "Hover or click a step in the graph, or press a step below, to see its evidence."
      : "The explainer found no path above its threshold for this diagnosis." }));
    var nodes = {};
    var edges = [];
    paths.forEach(function (path, pi) {
      var steps = stepsOf(path);
      var last = path.nodes.length - 1;
      path.nodes.forEach(function (id, ni) {
        var role = ni === 0 ? "patient" : ni === last ? "disease" : ni === 1 ? "finding" : "concept";
        var label = (path.node_names && path.node_names[ni]) || nameOf(id);
        var node = nodes[id] || (nodes[id] = { id: id, label: label, role: role, status: "" });
        if (role === "disease" || (role === "finding" && node.role === "concept")) node.role = role;
        if (role === "finding") {
          var f = patientFinding(id, steps[0] && steps[0].evidence);
          if (f) node.status = findingStatus(f);
          if (steps[0] && isAbsentRelation(steps[0].relation)) node.status = "absent";
        }
      });
      var item = el("li", null, [el("span", { className: "path-score", text: "path " + (pi + 1) +
        (typeof path.score === "number" ? " \u00b7 " + (path.score < 0 ? "counts against" : "supports") +
          " (score " + (path.score > 0 ? "+" : "") + path.score.toFixed(3) + ")" : "") })]);
      var row = el("span", { className: "path-steps" });
      steps.forEach(function (step, si) {
        var detail = stepDetail(step, pi, si);
        var edgeId = "e" + pi + "-" + si;
        edges.push({ id: edgeId, source: step.src, target: step.dst, label: step.relation, detail: detail,
          against: (typeof path.score === "number" && path.score < 0) ||
            Boolean(nodes[path.nodes[1]] && nodes[path.nodes[1]].status === "absent") });
        if (si === 0) row.appendChild(el("span", { className: "path-node", text: nameOf(step.src) === step.src && path.node_names ? path.node_names[0] : nameOf(step.src) }));
        var button = el("button", { type: "button", className: "step", "data-edge": edgeId, "data-kind": detail.kind,
          title: detail.items.map(function (x) { return x[0] + ": " + x[1]; }).join("\n") }, [step.relation]);
        button.addEventListener("click", function () { focusEdge(edgeId, detail); });
        button.addEventListener("focus", function () { focusEdge(edgeId, detail); });
        row.appendChild(button);
        var dstNode = nodes[step.dst];
        var dstLabel = dstNode ? dstNode.label : nameOf(step.dst);
        var chip = el("span", { className: "path-node", "data-status": dstNode && dstNode.role === "finding" ? dstNode.status : null, text: dstLabel });
        if (dstNode && dstNode.role === "finding" && STATUS_TAG[dstNode.status]) {
          chip.appendChild(el("span", { className: "tag", text: STATUS_TAG[dstNode.status] }));
        }
        row.appendChild(chip);
      });
      item.appendChild(row);
      list.appendChild(item);
    });
    renderGraph(nodes, edges);
  }

  function focusEdge(edgeId, detail) {
    showDetail(detail);
    if (!state.cy) return;
    state.cy.elements().removeClass("focused");
    state.cy.getElementById((state.edgeAlias || {})[edgeId] || edgeId).addClass("focused");
  }

  /* Left to right (patient first, disease last) when that fits the panel at a readable scale,
     else top to bottom; the panel's height follows the drawing. */
  function layoutGraph(cy, container) {
    var dagre = typeof window.cytoscapeDagre === "function";
    var longest = 0;
    cy.edges().forEach(function (e) { longest = Math.max(longest, String(e.data("label")).length); });
    var labelGap = Math.max(60, longest * 6 + 24); // room for the relation's name between ranks
    var width = Math.max(container.clientWidth - 20, 100);
    var run = function (dir) {
      cy.layout(dagre
        ? { name: "dagre", rankDir: dir, nodeSep: 16, rankSep: dir === "LR" ? labelGap : 80, edgeSep: 10, fit: false }
        : { name: "breadthfirst", directed: true, fit: false }).run();
      return cy.elements().boundingBox();
    };
    var box = run("LR");
    if (width / box.w < 0.85) box = run("TB");
    var scale = Math.min(1.3, width / box.w);
    var height = Math.max(180, Math.min(520, box.h * scale + 36));
    container.style.height = Math.round(height) + "px";
    cy.resize();
    cy.fit(undefined, 14);
  }

  function renderGraph(nodes, edges) {
    var container = $("path-graph");
    if (state.cy) { state.cy.destroy(); state.cy = null; }
    clear(container);
    if (typeof window.cytoscape !== "function") {
      container.appendChild(el("p", { className: "hint", text: "The graph library did not load; the paths are listed below." }));
      return;
    }
    var ids = Object.keys(nodes);
    if (!ids.length) {
      container.appendChild(el("p", { className: "hint graph-empty", text: "No explanation paths for this diagnosis." }));
      return;
    }
    var elements = ids.map(function (id) {
      var n = nodes[id];
      var label = n.label + (n.role === "finding" && STATUS_TAG[n.status] ? "\n(" + STATUS_TAG[n.status] + ")" : "");
      // the patient's one-line label sets its width; the others wrap at 92 px
      var width = n.role === "patient" ? Math.max(84, label.length * 7 + 20) : null;
      var data = { id: id, label: label };
      if (width) data.w = width;
      return { group: "nodes", data: data, classes: n.role + (n.status ? " " + n.status : "") };
    });
    var seen = {};
    state.edgeAlias = {};
    var details = {}; // drawn edge id -> the details of the steps it stands for
    edges.forEach(function (e) {
      var key = e.source + "|" + e.label + "|" + e.target;
      if (seen[key]) {
        seen[key].details.push(e.detail);
        state.edgeAlias[e.id] = seen[key].id; // one drawn edge for a step that several paths share
        return;
      }
      var data = { id: e.id, source: e.source, target: e.target, label: e.label };
      seen[key] = { id: e.id, details: [e.detail] };
      details[e.id] = seen[key].details;
      elements.push({ group: "edges", data: data, classes: e.against ? "against" : "" });
    });
    var cy = window.cytoscape({
      container: container,
      elements: elements,
      layout: { name: "preset" },
      minZoom: 0.4,
      maxZoom: 1.3,
      userZoomingEnabled: false,
      boxSelectionEnabled: false,
      autoungrabify: true,
      style: [
        { selector: "node", style: {
          label: "data(label)", "text-wrap": "wrap", "text-max-width": "92px", "font-size": 11,
          "text-valign": "center", "text-halign": "center", width: 104, height: 40, shape: "round-rectangle",
          "background-color": "#e8eefc", "border-width": 2, "border-color": "#3456a8", color: "#10213f" } },
        { selector: "node.patient", style: { "background-color": "#1f2937", "border-color": "#1f2937", color: "#ffffff", shape: "ellipse", width: "data(w)", "text-max-width": "240px" } },
        { selector: "node.finding", style: { "background-color": "#dcefe4", "border-color": "#1e7a46" } },
        { selector: "node.finding.absent", style: { "background-color": "#f3f4f6", "border-style": "dashed", "border-color": "#b42318", color: "#4b5563" } },
        { selector: "node.finding.possible", style: { "border-style": "dashed", "background-color": "#fdf3d7", "border-color": "#a15c07" } },
        { selector: "node.finding.historical", style: { "border-style": "dotted", "background-color": "#efeafd", "border-color": "#5b3fb5" } },
        { selector: "node.concept", style: { "background-color": "#ffffff", "border-color": "#6b7280", shape: "rectangle" } },
        { selector: "node.disease", style: { "background-color": "#fde7e4", "border-color": "#9f1c10", "border-width": 3, shape: "hexagon", width: 124, height: 48, "font-weight": "bold" } },
        { selector: "edge", style: {
          width: 2, "line-color": "#7a869a", "target-arrow-color": "#7a869a", "target-arrow-shape": "triangle",
          "curve-style": "bezier", label: "data(label)", "font-size": 9, color: "#374151", "text-wrap": "none",
          "text-background-color": "#ffffff", "text-background-opacity": 0.9, "text-background-padding": 2,
          "text-rotation": "none" } },
        { selector: "edge.against", style: { "line-style": "dashed", "line-color": "#b42318", "target-arrow-color": "#b42318" } },
        { selector: ".focused", style: { "line-color": "#1d4ed8", "target-arrow-color": "#1d4ed8", width: 4, "border-color": "#1d4ed8", "border-width": 4 } },
      ],
    });
    layoutGraph(cy, container);
    var show = function (event) {
      var target = event.target;
      cy.elements().removeClass("focused");
      target.addClass("focused");
      // a node shows the step that reaches it (the patient: the step that leaves it)
      var edge = target.isEdge() ? target
        : target.connectedEdges().filter(function (e) { return e.target().id() === target.id(); })[0]
          || target.connectedEdges()[0];
      var shown = edge ? details[edge.id()] || [] : [];
      if (shown.length) showDetail(shown[0]);
    };
    cy.on("mouseover tap", "edge, node", show);
    state.cy = cy;
    container.setAttribute("aria-label", "Explanation graph: " + ids.length + " nodes, " + cy.edges().length +
      " steps; the same paths are listed below as buttons.");
  }

  // ------------------------------------------------------------------ start
  function route() {
    var match = window.location.pathname.match(/^\/patients\/([^/]+)\/?$/);
    if (match) showPatient(decodeURIComponent(match[1]));
    else showPatientList();
  }

  function start() {
    state.key = loadKey();
    updateKeyStatus();
    $("forget-key").addEventListener("click", function () {
      saveKey(null);
      window.location.assign("/");
    });
    route();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
