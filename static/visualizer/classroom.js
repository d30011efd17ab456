// Class sessions, on htmx's WebSocket extension: the class bar holds the class socket
// (ws-connect) and htmx swaps each frame's elements in by id. This file decides which
// frames a page takes, reports the instructor's page, and lets a follower explore on
// their own.
(function () {
  "use strict";
  const byId = (id) => document.getElementById(id);
  const bar = byId("class-bar");
  if (!bar || !bar.hasAttribute("ws-connect")) return;
  const drive = bar.dataset.classDrive;
  const follow = bar.dataset.classFollow;
  const code = drive || follow;
  const RECONNECTS = [1006, 1011, 1012, 1013]; // the close codes htmx reconnects after
  let socket = null; // the extension's socket, while it is open
  let retries = 0; // reconnections tried here since the socket was last open
  let lastSent = null;
  let detached = false;
  let ended = false;

  const here = () => location.pathname + location.search;
  const fromClass = (event) => event.target === bar;
  function say(text) { const status = byId("class-status"); if (status) status.textContent = text; }

  document.addEventListener("htmx:wsOpen", function (event) {
    if (!fromClass(event)) return;
    socket = event.detail.socketWrapper;
    lastSent = null;
    retries = 0;
    if (follow && !detached) say("Following class " + code + ": this page moves with the instructor's.");
    if (drive) { say(""); report(); sendCode(); } // the bar already says the class follows
  });
  // htmx reconnects after a dropped connection (1006) or a server that is restarting
  // (1011-1013); any other close but the class's end (1000) or an unknown class (4404),
  // such as a server shutting down (1001), is retried here, with the same kind of backoff.
  document.addEventListener("htmx:wsClose", function (event) {
    if (!fromClass(event)) return;
    socket = null;
    const closed = event.detail.event.code;
    if (ended || closed === 1000 || closed === 4404) return;
    say("Connection to the class lost; reconnecting…");
    if (!RECONNECTS.includes(closed)) {
      retries = Math.min(retries + 1, 6);
      setTimeout(event.detail.socketWrapper.reconnect, Math.random() * 1000 * 2 ** retries);
    }
  });
  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    if (fromClass(event) && !takes(firstElement(String(event.detail.message)))) event.preventDefault();
  });

  // A frame's first element says what it is: a move (#class-move), the instructor's lab
  // run (#lab-live), or a line for the bar.
  function firstElement(message) {
    const tag = /^<[^>]*>/.exec(message);
    if (!tag) return null;
    const template = document.createElement("template");
    template.innerHTML = tag[0];
    return template.content.firstElementChild;
  }

  function takes(head) {
    if (!head) return true;
    if (head.id === "lab-live") {
      // Never over a run of the student's own (a panel that is neither empty nor mirrored).
      const live = byId("lab-live");
      const free = live && (live.dataset.mirrored === "true" || !live.children.length);
      return Boolean(follow && !detached && free);
    }
    if (head.id === "class-code") {
      // The instructor's code as they type it: for the read-only editor of the same view.
      const view = byId("class-code");
      return Boolean(follow && !detached && view && view.dataset.scenario === head.dataset.scenario);
    }
    if (head.id !== "class-move") return true;
    const shown = byId("class-move");
    const version = Number(head.dataset.classVersion);
    // Our own move, or one this page shows already.
    if (drive || !shown || version <= Number(shown.dataset.classVersion)) return false;
    if (head.dataset.action === "end") { ended = true; return true; }
    if (detached) {
      shown.dataset.classVersion = String(version);
      say("Exploring on your own. The instructor has moved on.");
      return false;
    }
    if (head.dataset.action === "load") {
      location.replace("/class/" + encodeURIComponent(code) + "/");
      return false;
    }
    return true; // a step of this page: the player partial, as a step link's answer
  }

  // The instructor: report the page whenever its URL changes (a step, a live run, another
  // page), at most a few times a second.
  function report() {
    const url = here();
    if (!socket || url === lastSent) return;
    lastSent = url;
    socket.send(JSON.stringify({ action: "drive", url: url }));
  }

  // The instructor: the code as it is typed (editor.js says when), for the followers'
  // read-only editor; sent again after a reconnection.
  let typedCode = null;
  function sendCode() {
    if (!socket || !typedCode) return;
    socket.send(JSON.stringify({ action: "code", scenario: typedCode.scenario, text: typedCode.text }));
  }
  if (drive) {
    document.addEventListener("playground:code", function (event) { typedCode = event.detail; sendCode(); });
  }

  function detach() {
    if (detached || !follow) return;
    detached = true;
    const link = byId("class-detach");
    if (link) {
      link.id = "class-rejoin";
      link.href = "/class/" + encodeURIComponent(code) + "/";
      link.textContent = "Follow again";
    }
    say("Exploring on your own.");
  }

  if (follow) {
    document.addEventListener("click", function (event) {
      const target = event.target.closest("a, button, input");
      if (!target) return;
      if (target.id === "class-detach") { event.preventDefault(); detach(); return; }
      // Stepping or playing on a followed page means exploring: stop following.
      if (target.closest("#player") || target.id === "play") detach();
    }, true);
    document.addEventListener("keydown", function (event) {
      if (["ArrowLeft", "ArrowRight", "Home", "End", " "].includes(event.key)) detach();
    }, true);
  }
  if (drive) setInterval(report, 150);
})();
