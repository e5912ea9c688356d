// The audio gate of the arena and of the annotation task, loaded by both pages before their
// own script: each track must be heard for a minimum time (or to its end, less a quarter
// second) before a verdict. Every play, pause and end is kept in `state.events` and sent
// with the verdict as play_events; the server checks the same rule (arena.voting.actions).
// `state` is the page's: { payload, shownAt, events, tracks }.
(function () {
  "use strict";

  function heardSeconds(track) {
    const running = track.startedAt !== null ? Math.max(0, track.audio.currentTime - track.startedAt) : 0;
    return track.heard + running;
  }

  // Watch one side's <audio>; `changed` runs whenever the gate may have opened.
  function track(state, audio, side, duration, changed) {
    const entry = { audio, heard: 0, startedAt: null, duration: duration || 0 };
    state.tracks[side] = entry;
    const now = () => performance.now() - state.shownAt;
    const stop = (type) => {
      if (entry.startedAt !== null) {
        entry.heard += Math.max(0, audio.currentTime - entry.startedAt);
        entry.startedAt = null;
      }
      state.events.push({ side, type, position: audio.currentTime, t: now() });
      changed();
    };
    audio.addEventListener("play", () => {
      entry.startedAt = audio.currentTime;
      state.events.push({ side, type: "play", position: audio.currentTime, t: now() });
    });
    audio.addEventListener("pause", () => { if (!audio.ended) stop("pause"); });
    audio.addEventListener("ended", () => stop("ended"));
    audio.addEventListener("timeupdate", changed);
    audio.addEventListener("loadedmetadata", () => {
      if (!entry.duration && isFinite(audio.duration)) entry.duration = audio.duration;
      changed();
    });
  }

  function isOpen(state, required) {
    if (!state || state.payload.modality !== "audio") return true;
    return ["a", "b"].every((side) => {
      const entry = state.tracks[side];
      if (!entry) return false;
      const needed = entry.duration > 0 ? Math.min(required, entry.duration - 0.25) : required;
      return heardSeconds(entry) >= needed;
    });
  }

  // Show or hide the gate's note (`element`); `action` names what waits ("voting").
  function showNote(element, state, required, action) {
    if (state.payload.modality === "audio" && !isOpen(state, required)) {
      const parts = ["a", "b"].map((side) => {
        const entry = state.tracks[side];
        return side.toUpperCase() + ": " + (entry ? heardSeconds(entry).toFixed(1) : "0.0") + " s";
      });
      element.textContent = "Listen to both tracks for at least " + required + " s before " + action + " (" + parts.join(", ") + ").";
      element.hidden = false;
    } else {
      element.hidden = true;
    }
  }

  // The verdict is an event too, for every track still playing when it was given.
  function recordVerdict(state, elapsed) {
    Object.entries(state.tracks).forEach(([side, entry]) => {
      if (entry.startedAt !== null) state.events.push({ side, type: "vote", position: entry.audio.currentTime, t: elapsed });
    });
  }

  // One page's gate. `current()`: the page's state, or null between items; `canAnswer(state)`:
  // whether the page itself allows a verdict now (the gate aside); the `buttons` stay locked
  // until both do; `note` shows what is left to hear; `action` names what waits ("voting").
  function forPage({ root, current, canAnswer, buttons, note, action }) {
    const required = () => parseFloat(root.dataset.audioMin);
    const gate = {
      isOpen: () => isOpen(current(), required()),
      update() {
        const state = current();
        if (!state) return;
        const open = gate.isOpen() && canAnswer(state);
        buttons.forEach((button) => { button.disabled = !open; });
        showNote(note, state, required(), action);
      },
      track: (audio, side, duration) => track(current(), audio, side, duration, gate.update),
      recordVerdict: (elapsed) => recordVerdict(current(), elapsed),
    };
    return gate;
  }

  window.DuetAudioGate = { forPage, heardSeconds, isOpen };
})();
