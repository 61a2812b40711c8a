// The dashboard's script, served as /assets/app.js (the CSP forbids inline scripts). Plain JS, no
// build step. Every action is a same-origin fetch to the JSON API under /v1. Data is written with
// textContent only; a page region that changed is replaced by the same region of the server's fresh
// HTML (escaped there, parsed inertly by DOMParser), so the server stays the only renderer.
// String.raw keeps the backslashes of the regular expressions; the script has no backticks or ${.
export const APP_JS = String.raw`"use strict";
(function () {
  var RUN_POLL_MS = 1500;
  var LIST_POLL_MS = 2000;

  function api(method, path, body) {
    var init = { method: method, headers: { accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) throw new Error(json.error || "the API answered " + res.status);
        return json;
      });
    });
  }

  // ---- times: the server writes UTC; show the viewer's local time (and "3 min ago" where asked)
  function relative(ms) {
    var s = Math.round((Date.now() - ms) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var text = s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : s < 86400 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d";
    return future ? "in " + text : text + " ago";
  }
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("datetime"));
      if (isNaN(ms)) return;
      var local = new Date(ms).toLocaleString();
      el.title = local + " (" + el.getAttribute("datetime") + ")";
      var mode = el.getAttribute("data-relative");
      el.textContent = mode === "both" ? local + " (" + relative(ms) + ")" : mode !== null ? relative(ms) : local;
    });
  }

  // ---- messages next to the control that caused them
  function flashNear(el) {
    for (var node = el; node; node = node.parentElement) {
      var found = node.querySelector(".flash");
      if (found) return found;
    }
    return null;
  }
  function say(el, text, kind) {
    var flash = flashNear(el);
    if (!flash) return;
    flash.className = "flash " + (kind || "");
    flash.textContent = text;
  }
  function sayLinks(el, text, links) {
    say(el, text, "ok");
    var flash = flashNear(el);
    links.forEach(function (link, i) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      flash.appendChild(document.createTextNode(i === 0 ? " " : ", "));
      flash.appendChild(a);
    });
  }

  // ---- regions: replace one with the server's fresh rendering of it
  function refreshRegion(id) {
    return fetch(location.href, { headers: { accept: "text/html" }, credentials: "same-origin" })
      .then(function (res) { return res.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
        var old = document.getElementById(id);
        if (!fresh || !old) return null;
        old.querySelectorAll("details[id][open]").forEach(function (d) {
          var twin = fresh.querySelector("#" + CSS.escape(d.id));
          if (twin) twin.open = true;
        });
        var adopted = document.importNode(fresh, true);
        old.replaceWith(adopted);
        localizeTimes(adopted);
        return adopted;
      });
  }

  // ---- JSON editors: checked as they are typed; the submit button waits for valid input
  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function checkEvent(e, where) {
    if (!isObject(e)) return where + "must be an object";
    if (typeof e.name !== "string" || e.name.length === 0) return where + "needs a \"name\" (a non-empty string)";
    if (e.name.length > 255) return where + "\"name\" is longer than 255 characters";
    if (e.data !== undefined && !isObject(e.data)) return where + "\"data\" must be an object";
    if (e.user !== undefined && !isObject(e.user)) return where + "\"user\" must be an object";
    if (e.id !== undefined && typeof e.id !== "string") return where + "\"id\" must be a string";
    if (e.ts !== undefined && typeof e.ts !== "number") return where + "\"ts\" must be a number (epoch ms)";
    return null;
  }
  function checkJson(textarea) {
    var value;
    try {
      value = JSON.parse(textarea.value);
    } catch (err) {
      return { error: "Not JSON: " + err.message };
    }
    if (textarea.dataset.json === "object") return isObject(value) ? { value: value, ok: "A JSON object" } : { error: "The data must be a JSON object, like {\"key\": \"value\"}" };
    var list = Array.isArray(value) ? value : [value];
    if (list.length === 0) return { error: "The array has no events" };
    for (var i = 0; i < list.length; i++) {
      var problem = checkEvent(list[i], Array.isArray(value) ? "Event " + (i + 1) + " " : "The event ");
      if (problem) return { error: problem };
    }
    return { value: value, ok: list.length === 1 ? "1 event, ready to send" : list.length + " events, ready to send" };
  }
  function validate(textarea) {
    var result = checkJson(textarea);
    var form = textarea.form;
    var hint = form.querySelector("[data-json-hint]");
    textarea.classList.toggle("invalid", !!result.error);
    textarea.setAttribute("aria-invalid", result.error ? "true" : "false");
    if (hint) {
      hint.textContent = result.error || result.ok;
      hint.className = "hint" + (result.error ? " bad" : "");
    }
    var submit = form.querySelector("button[type=submit]");
    if (submit) submit.disabled = !!result.error;
    return result;
  }

  // ---- forms
  var forms = {
    invoke: function (form) {
      var result = validate(form.querySelector("textarea[data-json]"));
      if (result.error) return;
      return api("POST", "/v1/functions/" + encodeURIComponent(form.dataset.functionId) + "/invoke", { data: result.value }).then(function (json) {
        location.href = "/runs/" + encodeURIComponent(json.data.run_id);
      });
    },
    "send-event": function (form) {
      var result = validate(form.querySelector("textarea[data-json]"));
      if (result.error) return;
      return api("POST", "/v1/events", result.value).then(function (json) {
        var ids = json.ids || [];
        sayLinks(form, "Sent " + (ids.length === 1 ? "1 event:" : ids.length + " events:"), ids.map(function (id) { return { href: "/events/" + encodeURIComponent(id), text: id }; }));
        // Once now for the event, once more a moment later for the runs it starts.
        later(function () { refreshRegion("events-live"); }, LIST_POLL_MS);
        return refreshRegion("events-live");
      });
    },
    "add-app": function (form) {
      var input = form.querySelector("input[name=url]");
      return api("POST", "/v1/apps", { url: input.value.trim() }).then(function (json) {
        input.value = "";
        say(form, "Added " + json.data.id + " with " + functionCount(json.data.functions) + ".", "ok");
        return refreshRegion("apps-live");
      });
    },
  };

  // ---- apps: after a sync or a removal, the list is the server's again; the outcome is said on the app's card
  function functionCount(list) { return list.length === 1 ? "1 function" : list.length + " functions"; }
  function sayOnApp(id, text, kind) {
    return refreshRegion("apps-live").then(function () {
      var card = document.getElementById("app-" + id);
      if (card) say(card.querySelector("button[data-action]"), text, kind);
    });
  }

  // ---- buttons
  var actions = {
    trigger: function (b) {
      return api("POST", "/v1/functions/" + encodeURIComponent(b.dataset.functionId) + "/trigger").then(function (json) {
        location.href = "/runs/" + encodeURIComponent(json.data.run_id);
      });
    },
    pause: function (b) {
      if (!confirm("Pause " + b.dataset.functionId + "? Its events are kept, and its runs start when it is resumed.")) return;
      return api("POST", "/v1/functions/" + encodeURIComponent(b.dataset.functionId) + "/pause", {}).then(function () { location.reload(); });
    },
    resume: function (b) {
      return api("POST", "/v1/functions/" + encodeURIComponent(b.dataset.functionId) + "/resume").then(function () { location.reload(); });
    },
    "cancel-run": function (b) {
      if (!confirm("Cancel this run?")) return;
      return api("DELETE", "/v1/runs/" + encodeURIComponent(b.dataset.runId)).then(function () { return refreshRegion("run-live"); }).then(startLive);
    },
    rerun: function (b) {
      var body = b.dataset.fromStep ? { from_step: b.dataset.fromStep } : {};
      return api("POST", "/v1/runs/" + encodeURIComponent(b.dataset.runId) + "/rerun", body).then(function (json) {
        location.href = "/runs/" + encodeURIComponent(json.data.run_id);
      });
    },
    "sync-app": function (b) {
      var id = b.dataset.appId;
      // A failed sync is recorded on the app: the fresh card shows it as its last error.
      return api("POST", "/v1/apps", { url: b.dataset.appUrl }).then(
        function (json) { return sayOnApp(json.data.id, "Synced: " + functionCount(json.data.functions) + ".", "ok"); },
        function (err) { return sayOnApp(id, err.message, "bad"); }
      );
    },
    "remove-app": function (b) {
      if (!confirm("Remove " + b.dataset.appId + "? Its functions leave Stepflare until the app is synced again.")) return;
      return api("DELETE", "/v1/apps/" + encodeURIComponent(b.dataset.appId)).then(function () { return refreshRegion("apps-live"); });
    },
    // A stuck run's repair (docs/production.md "Stuck runs"): the run of the button (its page), or the checked runs (the Health page).
    repair: function (b) {
      var action = b.dataset.repair;
      var ids = b.dataset.runId ? [b.dataset.runId] : Array.prototype.map.call(document.querySelectorAll("#stuck-live input[name=run]:checked"), function (input) { return input.value; });
      if (ids.length === 0) return void say(b, "Check the runs to repair first.", "bad");
      if (action === "cancel" && !confirm(ids.length === 1 ? "Cancel this run?" : "Cancel these " + ids.length + " runs?")) return;
      var body = { action: action, run_ids: ids };
      if (action === "repoint") body.function_id = b.parentElement.querySelector("[data-repoint-target]").value;
      return api("POST", "/v1/runs/repair", body).then(function (json) {
        var failed = json.data.filter(function (r) { return r.error; });
        var done = json.data.length - failed.length;
        if (b.dataset.runId && action === "rerun" && json.data[0].new_run_id) return void (location.href = "/runs/" + encodeURIComponent(json.data[0].new_run_id));
        var text = (done === 1 ? "1 run" : done + " runs") + ": " + action + " done." + (failed.length ? " Not repaired: " + failed.map(function (r) { return r.run_id + " (" + r.error + ")"; }).join("; ") : "");
        var regions = b.dataset.runId ? [refreshRegion("run-live").then(startLive)] : [refreshRegion("stuck-live"), refreshRegion("stuck-counts")];
        return Promise.all(regions).then(function () { say(document.querySelector("[data-action=repair][data-repair=" + action + "]") || b, text, failed.length ? "bad" : "ok"); });
      });
    },
    "bulk-cancel": function (b) {
      if (!confirm("Cancel every unfinished run of " + b.dataset.functionId + " that this filter covers?")) return;
      var body = { function_id: b.dataset.functionId };
      if (b.dataset.startedAfter) body.started_after = b.dataset.startedAfter;
      if (b.dataset.startedBefore) body.started_before = b.dataset.startedBefore;
      return api("POST", "/v1/cancellations", body).then(function (json) {
        say(b, "Cancelling in the background (cancellation " + json.data.id + "); the list updates as runs end.", "ok");
      });
    },
  };

  function busy(el, promise) {
    if (!promise) return;
    el.disabled = true;
    promise.catch(function (err) { say(el, err.message, "bad"); }).then(function () { el.disabled = false; });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (!button || !actions[button.dataset.action]) return;
    e.preventDefault();
    say(button, "");
    busy(button, actions[button.dataset.action](button));
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !forms[form.dataset.form]) return;
    e.preventDefault();
    say(form, "");
    var submit = form.querySelector("button[type=submit]");
    busy(submit || form, forms[form.dataset.form](form));
  });
  document.addEventListener("input", function (e) {
    if (e.target.matches && e.target.matches("textarea[data-json]")) validate(e.target);
  });

  // ---- live regions
  function listSignature(rows) {
    return rows.map(function (r) { return r.run_id + ":" + r.status; }).sort().join(",");
  }
  function domSignature(region) {
    return Array.prototype.map.call(region.querySelectorAll("tr[data-run-id]"), function (tr) {
      return tr.dataset.runId + ":" + tr.dataset.status;
    }).sort().join(",");
  }
  function runSignature(run) {
    return run.status + ";" + run.steps.map(function (s) { return s.id + ":" + s.status + ":" + s.attempts; }).join(",");
  }
  function later(fn, ms) { setTimeout(function () { if (document.hidden) later(fn, ms); else fn(); }, ms); }

  // A list of runs (the runs page, an event's runs): poll the API; swap the region when a run appeared or changed.
  function pollList(id) {
    var region = document.getElementById(id);
    if (!region || region.dataset.live !== "runs") return;
    api("GET", region.dataset.api).then(function (json) {
      if (listSignature(json.data) !== domSignature(region)) return refreshRegion(id);
    }).catch(function () {}).then(function () { later(function () { pollList(id); }, LIST_POLL_MS); });
  }

  // A run's page: follow its stream where the API has one, else poll GET /v1/runs/:id.
  var following = false;
  function startLive() {
    var region = document.getElementById("run-live");
    if (!region || region.dataset.live !== "run" || following) return;
    following = true;
    var runId = region.dataset.runId;
    var checking = null;
    var again = false;
    // One check at a time; news that arrives during one asks for another after it.
    function check() {
      if (checking) {
        again = true;
        return checking;
      }
      checking = api("GET", "/v1/runs/" + encodeURIComponent(runId)).then(function (json) {
        var current = document.getElementById("run-live");
        if (current && runSignature(json.data) !== current.dataset.signature) return refreshRegion("run-live");
      }).catch(function () {}).then(function () {
        checking = null;
        var current = document.getElementById("run-live");
        var live = !!(current && current.dataset.live === "run");
        if (live && again) {
          again = false;
          return check();
        }
        return live;
      });
      return checking;
    }
    function poll() { check().then(function (live) { if (live) later(poll, RUN_POLL_MS); else following = false; }); }
    if (!window.EventSource) return poll();
    var source = new EventSource("/v1/runs/" + encodeURIComponent(runId) + "/stream");
    var onChange = function () { check().then(function (live) { if (!live) { source.close(); following = false; } }); };
    ["step", "run", "publish", "message"].forEach(function (type) { source.addEventListener(type, onChange); });
    source.addEventListener("end", function () { source.close(); check().then(function () { following = false; }); });
    source.onerror = function () { source.close(); poll(); };
  }

  function start() {
    localizeTimes(document);
    // On a phone the runs filter starts folded, unless it is in use.
    var filters = document.getElementById("runs-filters");
    if (filters && window.matchMedia("(max-width: 600px)").matches && location.search === "") filters.open = false;
    document.querySelectorAll("textarea[data-json]").forEach(validate);
    document.querySelectorAll("[data-live=runs][id]").forEach(function (region) { later(function () { pollList(region.id); }, LIST_POLL_MS); });
    startLive();
    setInterval(function () { localizeTimes(document); }, 15000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
`;
