// The export page: follow every queued or running export by polling its JSON status
// (/api/annotation/exports/<id>/), show its progress, and when it ends its rows and files
// (or its error), without reloading the page. No inline script (the CSP forbids it).
(function () {
  "use strict";
  var ACTIVE = { queued: true, running: true };
  var INTERVAL_MS = 1500;

  function show(row, job) {
    row.dataset.status = job.status;
    var status = row.querySelector(".job-status");
    var bar = row.querySelector(".job-progress");
    var count = row.querySelector(".job-count");
    var rows = row.querySelector(".job-rows");
    var files = row.querySelector(".job-files");
    var error = row.querySelector(".job-error");
    if (status) status.textContent = job.status;
    if (bar) { bar.value = job.progress || 0; bar.hidden = job.status !== "running"; }
    if (count) count.textContent = job.status === "running" && job.total ? job.done + "/" + job.total : "";
    if (error && job.error) { error.textContent = job.error; error.hidden = false; }
    if (!ACTIVE[job.status]) {  // an ended export has nothing to cancel
      var cancel = row.querySelector(".job-cancel");
      if (cancel) cancel.closest("form").hidden = true;
    }
    if (job.status === "succeeded") {
      if (rows && job.result && job.result.n_rows != null) rows.textContent = job.result.n_rows;
      if (files) {
        files.textContent = "";
        (job.parts || []).forEach(function (part) {
          var link = document.createElement("a");
          link.href = "?download=" + encodeURIComponent(job.id) + "&part=" + encodeURIComponent(part);
          link.textContent = part;
          files.appendChild(link);
          files.appendChild(document.createTextNode(" "));
        });
      }
    }
  }

  function follow(row) {
    async function poll() {
      try {
        var response = await fetch(row.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) {
          var job = await response.json();
          show(row, job);
          if (!ACTIVE[job.status]) return;
        } else if (response.status === 403 || response.status === 404) {
          return; // logged out, or the export was cleaned up: nothing more to follow
        }
      } catch (err) { /* the server is busy or restarting: try again */ }
      window.setTimeout(poll, INTERVAL_MS);
    }
    poll();
  }

  document.querySelectorAll("#export-jobs tr[data-job-url]").forEach(function (row) {
    if (ACTIVE[row.dataset.status]) follow(row);
  });
})();
