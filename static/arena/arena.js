// The arena vote loop: fetch a comparison, show it, gate audio, vote (the answer brings the
// next comparison), reveal, move on.
// Served by Duet itself (no CDN); the HTML it inserts was sanitised on the server.
(function () {
  "use strict";

  const root = document.getElementById("arena");
  if (!root) return;

  const $ = (id) => document.getElementById(id);
  const voteButtons = Array.from(root.querySelectorAll("button.vote"));
  const VERDICT_KEYS = { 1: "a", 2: "b", 3: "tie", 4: "both_bad" };
  const VERDICT_TEXT = { a: "You preferred A", b: "You preferred B", tie: "You called it a tie", both_bad: "You found both bad" };

  let state = null; // { payload, shownAt, events, tracks, voted }
  // The next comparison, served with the answer to the last vote (POST vote?next=1), so
  // "Next" shows it without another round trip. GET next would serve the same one.
  let prefetched = null;

  // Where each modality stands (arena.voting.readiness), first from the page, then polled while
  // answers are being generated, so a comparison shows up without a reload.
  const POLL_MS = 4000;
  let readiness = JSON.parse($("arena-readiness").textContent);
  let pollTimer = null;
  let waiting = false; // the last look for a comparison found none
  let answersWhenWaiting = null; // the current modality's ready answers at that look

  function csrfToken() {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.hidden = !text;
    status.classList.toggle("error", !!isError);
  }

  function show(id, visible) {
    const element = $(id);
    if (element) element.hidden = !visible; // the category tag exists only where the arena has categories
  }

  async function loadNext() {
    state = null;
    show("after", false);
    show("gate", false);
    show("votes", false);
    show("category-tag", false);
    $("body-a").replaceChildren();
    $("body-b").replaceChildren();
    ["a", "b"].forEach((side) => {
      const identity = $("identity-" + side);
      identity.hidden = true;
      identity.textContent = "";
    });
    if (prefetched) {
      const payload = prefetched;
      prefetched = null;
      render(payload);
      return;
    }
    setStatus("Loading a comparison…");
    const url = root.dataset.nextUrl + "?modality=" + encodeURIComponent(root.dataset.modality);
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (err) {
      setStatus("Could not reach Duet: " + err.message, true);
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) {
      window.location.href = "/accounts/login/?next=" + encodeURIComponent(window.location.pathname + window.location.search);
      return;
    }
    if (!response.ok) {
      show("prompt", false);
      show("sides", false);
      show("votes", false);
      show("category-tag", false);
      if (response.status === 404) {
        startWaiting(body.detail);
      } else {
        setStatus(body.detail || "Could not load a comparison (" + response.status + ")", true);
      }
      return;
    }
    render(body);
  }

  // --- readiness: say where comparisons are, and load one as soon as it exists ---
  function current() {
    return readiness.modalities[root.dataset.modality];
  }

  function showReadiness() {
    const note = $("readiness");
    note.textContent = readiness.note;
    note.hidden = !readiness.note;
    root.querySelectorAll(".tab[data-modality]").forEach((tab) => {
      const info = readiness.modalities[tab.dataset.modality];
      if (info) {
        tab.dataset.state = info.state;
        tab.title = info.state === "generating" ? "Answers are being generated (" + info.answers + " of " + info.expected + " ready)" : "";
      }
    });
    if (waiting && current().state === "generating") {
      setStatus("The first " + current().label.toLowerCase() + " comparison shows here as soon as its answers are ready.");
    }
  }

  function startWaiting(detail) {
    waiting = true;
    answersWhenWaiting = current().answers;
    setStatus(detail || "");
    showReadiness();
    schedulePoll();
  }

  function schedulePoll() {
    const generating = Object.values(readiness.modalities).some((info) => info.generating);
    if (pollTimer === null && generating) pollTimer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    pollTimer = null;
    if (!document.hidden) {
      const url = root.dataset.readinessUrl + "?modality=" + encodeURIComponent(root.dataset.modality);
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) readiness = await response.json();
      } catch (err) {
        // Not reachable for a moment (a restarting server): the next poll tries again.
      }
      showReadiness();
      if (waiting && !state && current().state === "ready" && current().answers !== answersWhenWaiting) {
        waiting = false;
        loadNext();
      }
    }
    schedulePoll();
  }

  function renderSide(side, data) {
    const container = $("body-" + side);
    container.replaceChildren();
    container.className = "body " + data.kind;
    if (data.kind === "text") {
      container.innerHTML = data.html; // sanitised server-side (arena.outputs.rendering)
    } else if (data.kind === "image") {
      const img = document.createElement("img");
      img.src = data.url;
      img.alt = "Output " + side.toUpperCase();
      img.className = "output-image";
      img.addEventListener("click", () => zoom(data.url));
      container.appendChild(img);
    } else if (data.kind === "audio") {
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "auto";
      audio.src = data.url;
      audio.id = "audio-" + side;
      audio.dataset.side = side;
      container.appendChild(audio);
      trackAudio(audio, side, data.duration);
    }
  }

  function render(payload) {
    state = { payload, shownAt: performance.now(), events: [], tracks: {}, voted: false };
    waiting = false;
    $("prompt-body").innerHTML = payload.prompt.html; // sanitised server-side
    renderSide("a", payload.a);
    renderSide("b", payload.b);
    show("prompt", true);
    show("sides", true);
    show("votes", true);
    show("category-tag", true);
    const tag = $("category");
    if (tag) tag.value = ""; // a tag describes one comparison: each starts untagged
    setStatus("");
    updateGate();
  }

  // --- audio gate (static/duet/audio_gate.js, shared with the annotation task) ---
  const gate = window.DuetAudioGate.forPage({
    root, current: () => state, canAnswer: (current) => root.dataset.canVote === "1" && !current.voted,
    buttons: voteButtons, note: $("gate"), action: "voting",
  });
  const trackAudio = gate.track, gateOpen = gate.isOpen, updateGate = gate.update;

  // --- voting ---
  async function vote(verdict) {
    if (!state || state.voted || !gateOpen() || root.dataset.canVote !== "1") return;
    state.voted = true;
    voteButtons.forEach((button) => { button.disabled = true; });
    const elapsed = performance.now() - state.shownAt;
    gate.recordVerdict(elapsed);
    Object.values(state.tracks).forEach((track) => track.audio.pause());
    let response, body;
    try {
      response = await fetch(root.dataset.voteUrl + "?next=1", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({
          token: state.payload.token,
          verdict,
          time_to_vote_ms: Math.round(elapsed),
          play_events: state.events,
          category: $("category") ? $("category").value : "",
        }),
      });
      body = await response.json().catch(() => ({}));
    } catch (err) {
      state.voted = false;
      updateGate();
      setStatus("Your vote was not sent: " + err.message, true);
      return;
    }
    if (!response.ok) {
      state.voted = false;
      updateGate();
      setStatus(body.detail || "Your vote was not recorded (" + response.status + ")", true);
      return;
    }
    prefetched = body.next || null; // null: nothing left, or refused; GET next says why
    revealIdentities(body.reveal, verdict);
  }

  function revealIdentities(reveal, verdict) {
    ["a", "b"].forEach((side) => {
      const identity = $("identity-" + side);
      const info = reveal[side];
      identity.textContent = info.system + (info.demo ? " · demo renderer" : "");
      identity.hidden = false;
    });
    $("result").textContent = VERDICT_TEXT[verdict] + ": A was " + reveal.a.system + ", B was " + reveal.b.system + ".";
    show("votes", false);
    show("category-tag", false);
    show("after", true);
    $("next").focus();
  }

  function zoom(url) {
    const overlay = $("zoom");
    overlay.querySelector("img").src = url;
    overlay.hidden = false;
  }

  voteButtons.forEach((button) => button.addEventListener("click", () => vote(button.dataset.verdict)));
  $("next").addEventListener("click", loadNext);
  $("zoom").addEventListener("click", () => { $("zoom").hidden = true; });

  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (!$("zoom").hidden && event.key === "Escape") { $("zoom").hidden = true; return; }
    if (state && state.voted) {
      if (event.key === "Enter" && event.target === $("next")) return; // the button's own click
      if (event.key === "n" || event.key === "Enter") {
        event.preventDefault();
        loadNext();
      }
      return;
    }
    const verdict = VERDICT_KEYS[event.key];
    if (verdict && !voteButtons[0].disabled) {
      event.preventDefault();
      vote(verdict);
    }
  });

  showReadiness();
  schedulePoll();
  if (current().state === "generating") {
    startWaiting(""); // nothing to serve yet: no need to ask
  } else {
    loadNext();
  }
})();
