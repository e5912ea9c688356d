// Live progress on the training pages: poll the API while a run is active and reload the
// page when anything changed, so bars, curves and metrics stay current.
(function () {
  "use strict";
  const root = document.getElementById("training");
  if (!root || root.dataset.active !== "1") return;
  let last = null;
  async function poll() {
    try {
      const response = await fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        const runs = body.results || [body];
        const signature = JSON.stringify(runs.map((r) => [r.id, r.status, r.progress]));
        if (last !== null && signature !== last) { window.location.reload(); return; }
        last = signature;
      }
    } catch (err) { /* try again */ }
    window.setTimeout(poll, 2000);
  }
  poll();
})();
