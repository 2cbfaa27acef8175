/* faceledger web UI behaviour. Loaded from /static (the CSP allows no inline script): every
   hook is a data-attribute, every handler is added here with addEventListener. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function numbers(text) {
    return String(text || "").split(",").map(function (v) { return parseFloat(v); });
  }

  function pct(value, total) {
    return (100 * value / total).toFixed(4) + "%";
  }

  /* Position a box [left, top, right, bottom] (image pixels) over an image of size w x h,
     in percentages so it follows the image when the layout resizes. */
  function placeBox(el, box, w, h) {
    if (!w || !h || box.length !== 4 || box.some(isNaN)) { return false; }
    var l = Math.max(0, box[0]), t = Math.max(0, box[1]);
    var r = Math.min(w, box[2]), b = Math.min(h, box[3]);
    el.style.left = pct(l, w);
    el.style.top = pct(t, h);
    el.style.width = pct(Math.max(1, r - l), w);
    el.style.height = pct(Math.max(1, b - t), h);
    return true;
  }

  /* ---- images with stored face boxes: <div data-boxed [data-size="w,h"]><img><span data-box> */
  function initBoxed(container) {
    var img = container.querySelector("img");
    if (!img) { return; }
    function place() {
      var size = numbers(container.getAttribute("data-size"));
      var w = size[0] || img.naturalWidth, h = size[1] || img.naturalHeight;
      var ok = true;
      container.querySelectorAll(".facebox[data-box]").forEach(function (el) {
        ok = placeBox(el, numbers(el.getAttribute("data-box")), w, h) && ok;
      });
      if (ok) { container.classList.add("placed"); }
    }
    if (img.complete && img.naturalWidth) { place(); }
    img.addEventListener("load", place);
    img.addEventListener("error", function () { container.classList.add("broken"); });
  }

  /* ---- the face picker: choose or drop a photo, find its faces, click one ----
     Reusable on any form: <form data-face-picker [data-faces-url="/api/v1/…/faces"]> holding
       <input type="hidden" name="face" data-face-number>   (gets the face number: 1, 2, … left to right)
       [data-dropzone] with <input type="file" data-probe-input>, [data-probe-preview] with
       [data-probe-frame] > <img data-probe-img>, [data-face-status], [data-probe-clear],
       and optionally a submit button [data-search-submit] (or [data-picker-submit]).
     The faces URL answers {"width", "height", "faces": [{"face", "box", ...}]} (default: the
     search's /api/v1/probe/faces). Data-attribute data-pick-verb words the box titles. */
  function initFacePicker(form) {
    var input = form.querySelector("[data-probe-input]");
    var zone = form.querySelector("[data-dropzone]");
    var preview = form.querySelector("[data-probe-preview]");
    var frame = form.querySelector("[data-probe-frame]");
    var img = form.querySelector("[data-probe-img]");
    var status = form.querySelector("[data-face-status]");
    var chosen = form.querySelector("[data-face-number]");
    var clear = form.querySelector("[data-probe-clear]");
    var submit = form.querySelector("[data-search-submit], [data-picker-submit]");
    var facesUrl = form.getAttribute("data-faces-url") || "/api/v1/probe/faces";
    var verb = form.getAttribute("data-pick-verb") || "Search for";
    if (!input || !zone || !preview || !frame || !img || !status || !chosen) { return; }
    var objectUrl = null;
    var faces = [];
    var request = 0;

    function say(text, kind) {
      status.textContent = text;
      status.className = "face-status" + (kind ? " " + kind : "");
    }

    function removeBoxes() {
      frame.querySelectorAll(".facebox").forEach(function (el) { el.remove(); });
      frame.classList.remove("placed");
      faces = [];
      chosen.value = "";
    }

    function select(number) {
      chosen.value = String(number);
      frame.querySelectorAll(".facebox.pick").forEach(function (el) {
        var on = el.getAttribute("data-face") === String(number);
        el.classList.toggle("selected", on);
        el.setAttribute("aria-pressed", on ? "true" : "false");
      });
      say(faces.length === 1 ? "One face found; it is selected."
        : "Face " + number + " of " + faces.length + " selected.", "ok");
    }

    function drawFaces(data) {
      removeBoxes();
      faces = data.faces || [];
      faces.forEach(function (face) {
        var el = document.createElement("button");
        el.type = "button";
        el.className = "facebox pick";
        el.setAttribute("data-face", String(face.face));
        el.setAttribute("aria-pressed", "false");
        el.setAttribute("aria-label", "Face " + face.face + " (" + face.face_px +
          " px, detector score " + face.detector_score + ")");
        el.title = verb + " face " + face.face;
        var label = document.createElement("span");
        label.className = "facebox-label";
        label.textContent = String(face.face);
        el.appendChild(label);
        placeBox(el, face.box, data.width, data.height);
        el.addEventListener("click", function () { select(face.face); });
        frame.appendChild(el);
      });
      frame.classList.add("placed");
      if (faces.length === 1) {
        select(faces[0].face);
      } else {
        say(faces.length + " faces found (numbered 1-" + faces.length +
          " left to right). Click the face you mean.", "");
      }
    }

    function showFile(file) {
      if (!file) { return; }
      removeBoxes();
      if (objectUrl) { URL.revokeObjectURL(objectUrl); }
      objectUrl = URL.createObjectURL(file);
      img.src = objectUrl;
      zone.hidden = true;
      preview.hidden = false;
      if (file.type && file.type.indexOf("image/") !== 0) {
        say("That file is not a photo.", "error");
        return;
      }
      say("Looking for faces…", "busy");
      var body = new FormData();
      body.append("probe", file);
      var mine = ++request;
      fetch(facesUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "x-csrf-token": csrfToken(), "accept": "application/json" }
      }).then(function (res) {
        return res.json().then(function (json) { return { ok: res.ok, json: json }; },
          function () { return { ok: false, json: { message: "HTTP " + res.status } }; });
      }).then(function (res) {
        if (mine !== request) { return; }
        if (!res.ok) {
          say(res.json.message || "The photo could not be read.", "error");
          return;
        }
        if (res.json.preview) { img.src = res.json.preview; }  /* Netpbm, TIFF: a PNG */
        drawFaces(res.json);
      }).catch(function () {
        if (mine === request) { say("Could not reach the server to find faces.", "error"); }
      });
    }

    input.addEventListener("change", function () {
      if (input.files && input.files.length) { showFile(input.files[0]); }
    });

    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) { return; }
      try {
        input.files = files;
      } catch (err) {
        var dt = new DataTransfer();
        dt.items.add(files[0]);
        input.files = dt.files;
      }
      showFile(files[0]);
    });

    function reset() {
      request++;
      removeBoxes();
      input.value = "";
      if (objectUrl) { URL.revokeObjectURL(objectUrl); objectUrl = null; }
      img.removeAttribute("src");
      preview.hidden = true;
      zone.hidden = false;
      input.focus();
    }
    if (clear) { clear.addEventListener("click", reset); }

    form.addEventListener("submit", function (event) {
      if (faces.length > 1 && chosen.value === "") {
        event.preventDefault();
        say("Click the face you mean first.", "error");
        var first = frame.querySelector(".facebox.pick");
        if (first) { first.focus(); }
        return;
      }
      if (submit) {
        submit.disabled = true;
        submit.textContent = submit.getAttribute("data-busy-text") || "Searching…";
      }
    });
  }

  /* ---- the search form: show the authorisation fields for purposes that need them ---- */
  function initAuthFields(fields) {
    var form = fields.form || fields.closest("form");
    var purpose = form && form.querySelector("select[name='purpose']");
    var ref = fields.querySelector("[data-auth-ref]");
    var urgent = fields.querySelector("[data-urgent]");
    if (!purpose || !ref || !urgent) { return; }
    function update() {
      var option = purpose.options[purpose.selectedIndex];
      var needed = !!(option && option.hasAttribute("data-needs-auth"));
      fields.hidden = !needed;
      /* The browser asks for the reference unless the search is marked urgent; the server's
         policy check is what enforces it. */
      ref.required = needed && !urgent.checked;
      if (!needed) { urgent.checked = false; }
    }
    purpose.addEventListener("change", update);
    urgent.addEventListener("change", update);
    update();
  }

  /* ---- ingest job page: poll the job until it stops running, then reload once ---- */
  function initJob(panel) {
    if (panel.getAttribute("data-job-status-now") !== "running") { return; }
    var url = panel.getAttribute("data-job-url");
    function field(name) { return document.querySelector('[data-field="' + name + '"]'); }
    function setText(name, value) {
      var el = field(name);
      if (el && value !== undefined && value !== null) { el.textContent = String(value); }
    }
    function update(job) {
      ["processed", "total", "added", "duplicates", "faces", "rejected", "stage",
       "images_no_face", "images_one_face", "images_several_faces"].forEach(function (k) {
        setText(k, job[k]);
      });
      var bar = field("progress");
      if (bar) {
        bar.max = Math.max(job.total || 0, 1);
        bar.value = job.total ? job.processed : 0;
        bar.textContent = job.processed + " of " + job.total;
      }
      var badge = document.querySelector("[data-job-status]");
      if (badge) {
        badge.textContent = job.status;
        badge.setAttribute("data-job-status", job.status);
        badge.className = "badge badge-job-" + job.status;
      }
    }
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "accept": "application/json" } })
        .then(function (res) { if (!res.ok) { throw new Error(String(res.status)); } return res.json(); })
        .then(function (job) {
          update(job);
          if (job.status === "running") {
            window.setTimeout(tick, 1500);
          } else {
            window.location.reload();
          }
        })
        .catch(function () { window.setTimeout(tick, 3000); });
    }
    window.setTimeout(tick, 1500);
  }

  /* ---- small helpers: confirm before destructive posts, copy buttons, busy buttons ---- */
  /* data-confirm: the question; with data-confirm-count="<checkbox selector>" it names how many
     are ticked ({count}; data-confirm-one for exactly one). None ticked: no question, the server
     refuses the request with its own message. */
  function initConfirm(form) {
    form.addEventListener("submit", function (event) {
      var text = form.getAttribute("data-confirm");
      var counted = form.getAttribute("data-confirm-count");
      if (counted) {
        var n = form.querySelectorAll(counted + ":checked").length;
        if (n === 0) { return; }
        text = (n === 1 && form.getAttribute("data-confirm-one")) ||
          text.replace(/\{count\}/g, String(n));
      }
      if (!window.confirm(text)) { event.preventDefault(); }
    });
  }

  function initCopy(button) {
    button.addEventListener("click", function () {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (!target || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.textContent = "Copied";
      });
    });
  }

  function initBusy(button) {
    var form = button.form;
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) { return; }  /* e.g. a confirmation answered "Cancel" */
      window.setTimeout(function () {
        button.disabled = true;
        button.textContent = button.getAttribute("data-busy-label");
      }, 0);
    });
  }

  function init() {
    document.querySelectorAll("[data-boxed]").forEach(initBoxed);
    document.querySelectorAll("[data-search-form], [data-face-picker]").forEach(initFacePicker);
    document.querySelectorAll("[data-auth-fields]").forEach(initAuthFields);
    document.querySelectorAll("[data-job]").forEach(initJob);
    document.querySelectorAll("form[data-confirm]").forEach(initConfirm);
    document.querySelectorAll("[data-copy]").forEach(initCopy);
    document.querySelectorAll("button[data-busy-label]").forEach(initBusy);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
