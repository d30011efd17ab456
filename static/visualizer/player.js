// The scenario page's few behaviours htmx does not cover: following a live run, keyboard
// shortcuts, play/pause, noticing a missed step, and showing the connection state.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  let following = false;
  let playTimer = null;
  const speeds = { "0.5": 1600, "1": 800, "2": 400, "4": 200 };

  const byId = (id) => document.getElementById(id);
  const player = () => byId("player");
  const pageRecording = () => (player() ? player().dataset.recording : "");

  function setFollowing(on) {
    following = on;
    document.body.classList.toggle("following", on);
    const status = byId("run-status");
    const running = status && status.dataset.running === "true";
    const follow = byId("follow-live");
    if (follow) follow.hidden = on || !running;
  }

  function stepUrl(step) {
    const params = new URLSearchParams(location.search);
    const recording = pageRecording();
    if (recording) params.set("recording", recording);
    if (step) params.set("step", step); else params.delete("step");
    return location.pathname + "?" + params.toString();
  }

  // The live marker's step when the player was last fetched to catch up with the run.
  let resyncedAt = null;
  const markerStep = () => (byId("live-marker") ? Number(byId("live-marker").dataset.seq) : 0);
  function resync() {
    resyncedAt = markerStep();
    const step = following ? null : (player() && player().dataset.step);
    htmx.ajax("GET", stepUrl(step), { target: "#player", swap: "outerHTML" });
  }

  // Step controls keep presenter mode and theme, whatever rendered their links.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get") return;
    const current = new URLSearchParams(location.search);
    for (const name of ["presenter", "theme", "embed"]) {
      if (current.get(name) && !event.detail.parameters[name]) {
        event.detail.parameters[name] = current.get(name);
      }
    }
  });

  // The execution table always lists consecutive steps: live rows are placed by their step
  // number, not by when they came. A row the table has already (sent before a snapshot or a
  // fetched player that holds it) is not added again; one that would leave a gap (steps
  // missed) is not added, and the next marker has the page fetch the recording. A table
  // that ends before the live end on purpose (a page showing an early step of a long run)
  // takes no live rows. Rows that come while the player is being fetched are kept and
  // placed in the new player, which may not hold them yet.
  const stepOf = (row) => Number(row.id.slice("step-".length));
  const rowsHiddenAfter = () => Boolean(player() && player().querySelector("[data-rows-hidden-after]"));
  let rowsWhileLoading = [];
  function lastStepShown() {
    const last = byId("rows") && byId("rows").lastElementChild;
    return last ? stepOf(last) : 0;
  }
  function placeRows(rows) {
    const table = byId("rows");
    if (!table || rowsHiddenAfter()) return;
    for (const row of rows) {
      if (row.dataset.recording !== pageRecording()) continue;
      const step = stepOf(row);
      if (step === lastStepShown() + 1) table.appendChild(row.cloneNode(true));
    }
  }
  // Whether the table lacks steps the live marker has reached: frames were missed.
  function behindMarker() {
    const marker = byId("live-marker");
    if (!marker || marker.dataset.recording !== pageRecording() || rowsHiddenAfter()) return false;
    return lastStepShown() < markerStep();
  }

  // This page's own socket is the live run's (#live); a class page has the class's too
  // (classroom.js), whose frames are not the run's.
  const fromLive = (event) => event.target.id === "live";
  let liveMessage = false; // while htmx swaps in a message of the live run
  document.addEventListener("htmx:wsBeforeMessage", function (event) { liveMessage = fromLive(event); });

  // Live rows are placed here, not swapped in by htmx. A page that is not following a live
  // run keeps its own step: live messages then only add rows to the recording it shows.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (!liveMessage) return;
    const id = event.detail.target.id;
    if (id === "rows") {
      event.detail.shouldSwap = false;
      const rows = Array.from(event.detail.fragment.querySelectorAll("tr[id^='step-']"));
      if (loading) rowsWhileLoading.push(...rows);
      placeRows(rows);
    } else if (!following && (id === "player" || id === "step-panels" || id === "announcer")) {
      event.detail.shouldSwap = false;
    } else if (id === "player" || id === "step-panels") {
      dropPlainParts(event.detail.target);
    }
  });
  // htmx fires events on every element it takes out (htmx:beforeCleanupElement), which
  // for a player of a few hundred rows and drawings holds up the live rows queued behind
  // the swap for tens of ms. These parts have no htmx of their own: they go first, at once.
  function dropPlainParts(replaced) {
    for (const part of replaced.querySelectorAll("#rows, .time-strip, pre.code, .picture-drawing")) {
      part.replaceChildren();
    }
  }

  document.addEventListener("htmx:wsAfterMessage", function (event) {
    liveMessage = false;
    if (!fromLive(event)) return;
    // Only frames that carry the marker end a step (a row frame comes before it).
    if (String(event.detail.message).indexOf('id="live-marker"') < 0) return;
    const marker = byId("live-marker");
    if (!marker || marker.dataset.recording !== pageRecording()) return;
    if (behindMarker()) {
      if (!loading) resync(); // steps were missed: fetch the recording as it is now
    } else if (following) {
      history.replaceState(null, "", stepUrl(marker.dataset.seq));
    }
    setFollowing(following);
  });

  document.addEventListener("htmx:wsOpen", function (event) {
    if (!fromLive(event)) return;
    byId("connection").hidden = true;
    // The server sends a snapshot of the recording named in the socket's URL; a run started
    // since then is asked for by name.
    const url = event.detail.elt.getAttribute("ws-connect") || "";
    if (pageRecording() && !url.endsWith("recording=" + pageRecording())) {
      event.detail.socketWrapper.send(JSON.stringify({ action: "sync", recording: pageRecording() }));
    }
  });
  document.addEventListener("htmx:wsClose", function (event) { if (fromLive(event)) byId("connection").hidden = false; });

  document.addEventListener("submit", function (event) {
    if (event.target.id === "run-form") { stopPlaying(); setFollowing(true); }
  }, true);

  // A run of edited code opens its page as soon as its first step is in (?follow=1), and
  // goes on: the page follows it, as it does a run started from the run form.
  const opened = new URLSearchParams(location.search);
  if (opened.get("follow") === "1") {
    opened.delete("follow");
    history.replaceState(null, "", location.pathname + "?" + opened.toString());
    setFollowing(true);
  }

  document.addEventListener("click", function (event) {
    const target = event.target.closest("button, a");
    if (!target) return;
    if (target.dataset.stepControl) setFollowing(false);
    if (target.dataset.stripStep) { setFollowing(false); stopPlaying(); }
    // The strip's positions (a hundred links) have no htmx attributes of their own: htmx
    // would wire each of them again every time a live run's panels are swapped in.
    const plainClick = event.button === 0 && !(event.ctrlKey || event.metaKey || event.shiftKey || event.altKey);
    if (target.dataset.stripStep && target.closest("[data-player-links]") && plainClick) {
      event.preventDefault();
      htmx.ajax("GET", target.href, { source: target, target: "#player", swap: "outerHTML", push: "true" });
    }
    // Presenter mode and theme links keep the recording and the step shown now (a run
    // recorded since the page loaded is not in the links the server rendered; the address
    // has the step: htmx pushes each step, and a followed live run replaces it).
    const step = new URLSearchParams(location.search).get("step");
    if (target.closest(".view-options")) {
      const url = new URL(target.href);
      if (pageRecording()) url.searchParams.set("recording", pageRecording());
      if (step) url.searchParams.set("step", step);
      target.href = url.toString();
    }
    if (target.id === "play") togglePlay();
    if (target.id === "follow-live") { setFollowing(true); resync(); }
    if (target.dataset.perfetto) openInPerfetto(target);
  });

  // Perfetto's own way to open a trace from another page: open its UI, ask "PING" until
  // it answers "PONG", then post the Chrome-trace JSON to it. The trace goes from this
  // browser to that window only; no server of ours or theirs receives it.
  const PERFETTO = "https://ui.perfetto.dev";
  async function openInPerfetto(button) {
    const status = byId("perfetto-status");
    const say = (text) => { if (status) status.textContent = text; };
    const perfetto = window.open(PERFETTO);
    if (!perfetto) { say("The browser blocked the new window; allow pop-ups for this page."); return; }
    let buffer;
    try {
      buffer = await (await fetch(button.dataset.perfetto)).arrayBuffer();
    } catch (error) {
      say("Could not read the trace: " + error);
      return;
    }
    say("Opening the trace in Perfetto…");
    const ping = setInterval(() => perfetto.postMessage("PING", PERFETTO), 50);
    const stop = setTimeout(() => { clearInterval(ping); window.removeEventListener("message", onPong); say("Perfetto did not answer (is ui.perfetto.dev reachable?)."); }, 20000);
    function onPong(event) {
      if (event.source !== perfetto || event.data !== "PONG") return;
      clearInterval(ping);
      clearTimeout(stop);
      window.removeEventListener("message", onPong);
      const title = button.dataset.title || "trace";
      perfetto.postMessage({ perfetto: { buffer: buffer, title: title, fileName: title + ".json" } }, PERFETTO);
      say("Sent to Perfetto.");
    }
    window.addEventListener("message", onPong);
  }
  document.addEventListener("input", function (event) {
    if (event.target.id === "step-slider") { setFollowing(false); stopPlaying(); }
    if (event.target.id === "speed" && playTimer) { stopPlaying(); startPlaying(); }
  });

  function control(name) { return document.querySelector('[data-step-control="' + name + '"]'); }

  // Keys pressed while a step is still loading are queued, so pressing Right three times
  // quickly moves three steps. The next move waits until the new step has settled (htmx
  // has wired its links), and only the latest request for a step may swap the player.
  let loading = false;
  let queuedMoves = 0;
  let playerRequests = 0;
  const forPlayer = (event) => event.detail.target && event.detail.target.id === "player";
  function move(delta) {
    if (loading) { queuedMoves += delta; return; }
    const link = control(delta > 0 ? "next" : "prev");
    if (link) link.click();
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!forPlayer(event)) return;
    loading = true;
    event.detail.xhr.playerRequest = ++playerRequests;
  });
  // The player is swapped whole on every step: the control that had keyboard focus (a
  // step link pressed with Enter, the slider, Play) gets it back in the new player.
  let focusedControl = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (forPlayer(event) && event.detail.xhr.playerRequest !== playerRequests) {
      event.detail.shouldSwap = false; // an older step's answer arriving late
      return;
    }
    const active = document.activeElement;
    if (forPlayer(event) && active && player() && player().contains(active)) {
      if (active.dataset.stripStep) focusedControl = ".strip-positions a[tabindex='0']";
      else if (active.dataset.stepControl) focusedControl = '[data-step-control="' + active.dataset.stepControl + '"]';
      else focusedControl = active.id ? "#" + active.id : null;
    }
  });
  function restoreFocus() {
    if (!focusedControl || !player()) return;
    const target = player().querySelector(focusedControl) || player().querySelector("[data-step-control]");
    focusedControl = null;
    if (target) target.focus();
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    if (forPlayer(event) && !event.detail.successful) {
      loading = false;
      queuedMoves = 0;
      rowsWhileLoading = [];
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!forPlayer(event)) return;
    restoreFocus();
    if (!loading) return;
    loading = false;
    placeRows(rowsWhileLoading);
    rowsWhileLoading = [];
    // A marker came while the player was fetched, which it may not hold yet: once more (at
    // most once per marker, should the server answer with less than the marker says).
    if (following && behindMarker() && markerStep() !== resyncedAt) { resync(); return; }
    if (queuedMoves !== 0) {
      const step = queuedMoves > 0 ? 1 : -1;
      queuedMoves -= step;
      move(step);
    }
  });

  function startPlaying() {
    const speed = byId("speed");
    const delay = speeds[speed ? speed.value : "1"] || 800;
    setFollowing(false);
    playTimer = setInterval(function () {
      const next = control("next");
      if (next) next.click(); else stopPlaying();
    }, delay);
    updatePlayButton();
  }
  function stopPlaying() {
    if (playTimer) clearInterval(playTimer);
    playTimer = null;
    updatePlayButton();
  }
  function togglePlay() { if (playTimer) stopPlaying(); else startPlaying(); }
  function updatePlayButton() {
    const button = byId("play");
    if (!button) return;
    button.textContent = playTimer ? "Pause" : "Play";
    button.setAttribute("aria-pressed", playTimer ? "true" : "false");
  }
  document.addEventListener("htmx:afterSwap", updatePlayButton);
  document.addEventListener("htmx:oobAfterSwap", updatePlayButton);

  // The time strip is one stop for Tab: its arrow keys move along it (Enter opens the step
  // at that time), as the keys of a slider would.
  function moveOnStrip(event) {
    const position = event.target.closest(".strip-positions a");
    const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
    if (!position || !(event.key in moves)) return false;
    event.preventDefault();
    const links = Array.from(position.parentElement.querySelectorAll("a"));
    const index = Math.max(0, Math.min(links.length - 1, links.indexOf(position) + moves[event.key]));
    position.tabIndex = -1;
    links[index].tabIndex = 0;
    links[index].focus();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (moveOnStrip(event)) return;
    const field = event.target.closest("input, select, textarea, button, a, [contenteditable]");
    const keys = { ArrowLeft: "prev", ArrowRight: "next", Home: "first", End: "last" };
    if (keys[event.key]) {
      if (field && field.matches("input, select, textarea")) return;
      event.preventDefault();
      stopPlaying();
      setFollowing(false);
      if (event.key === "ArrowLeft") move(-1);
      else if (event.key === "ArrowRight") move(1);
      else {
        queuedMoves = 0;
        const link = control(keys[event.key]);
        if (link) link.click();
      }
    } else if (event.key === " " && !field) {
      event.preventDefault();
      togglePlay();
    }
  });
})();
