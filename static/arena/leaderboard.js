// Keep the leaderboard current: poll the API and reload when a newer snapshot exists.
(function () {
  "use strict";
  const root = document.getElementById("leaderboard");
  if (!root) return;
  const shown = root.dataset.snapshot;
  const POLL_MS = 2000;
  async function poll() {
    try {
      const response = await fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        if (body.snapshot !== null && String(body.snapshot) !== shown) {
          window.location.reload();
          return;
        }
      }
    } catch (err) {
      // The server may be restarting; try again on the next tick.
    }
    window.setTimeout(poll, POLL_MS);
  }
  window.setTimeout(poll, POLL_MS);
})();
