// The project page's import form: send the file in the background, show the upload's
// progress, then that the server is checking and writing the rows, and finally its
// answer (what was imported, or the line and field that stopped it) in place. The view
// answers JSON when asked for it; without this script the form posts and redirects.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  var box = document.getElementById("import-job");
  if (!form || !box || !window.XMLHttpRequest) return;
  var phase = box.querySelector(".import-phase");
  var bar = box.querySelector(".import-progress");
  var result = box.querySelector(".import-result");
  var button = form.querySelector("button[type=submit]");

  function say(text, value) {
    phase.textContent = text;
    if (value === null) bar.removeAttribute("value"); // indeterminate: the server is working
    else bar.value = value;
  }

  function finish(ok, message) {
    box.hidden = false;
    bar.hidden = true;
    phase.textContent = ok ? "Imported" : "Not imported";
    result.textContent = message;
    result.className = "import-result " + (ok ? "status" : "error");
    button.disabled = false;
  }

  function showCounts(answer) {
    var routes = document.getElementById("routes");
    if (routes && answer.routes) {
      routes.textContent = Object.keys(answer.routes).map(function (route) {
        return route + " " + answer.routes[route];
      }).join(", ");
    }
    var checks = document.getElementById("check-items");
    if (checks && answer.check_items != null) checks.textContent = answer.check_items;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) say("Uploading " + Math.round(100 * e.loaded / e.total) + "%", e.loaded / e.total);
    });
    request.upload.addEventListener("load", function () { say("Checking and writing the rows…", null); });
    request.addEventListener("load", function () {
      var answer = null;
      try { answer = JSON.parse(request.responseText); } catch (err) { answer = null; }
      if (answer && typeof answer.ok === "boolean") {
        finish(answer.ok, answer.message);
        if (answer.ok) { showCounts(answer); form.reset(); }
      } else {
        finish(false, "The server answered " + request.status + " without a result; reload the page to see what was imported.");
      }
    });
    request.addEventListener("error", function () {
      finish(false, "The upload did not reach the server; nothing was imported. Check the connection and try again.");
    });
    box.hidden = false;
    bar.hidden = false;
    result.textContent = "";
    button.disabled = true;
    say("Uploading", 0);
    request.send(new FormData(form));
  });
})();
