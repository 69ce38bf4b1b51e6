/* Larder's portal script: keyboard shortcuts, copy buttons, and the lineage graph.
   No framework; htmx (served from django_htmx) does the partial page updates. */
(function () {
  "use strict";

  function searchBox() {
    return document.querySelector("[data-search-box]") ||
      document.querySelector("header.top input[type=search]") ||
      document.querySelector("input[type=search]");
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // "/" focuses the search box; Escape leaves it (and closes open menus and details popups).
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !typing(event.target)) {
      var box = searchBox();
      if (box) {
        event.preventDefault();
        box.focus();
        if (box.select) box.select();
      }
    } else if (event.key === "Escape") {
      document.querySelectorAll("[data-search-results]").forEach(function (el) { el.hidden = true; });
      document.querySelectorAll("details[data-closable][open]").forEach(function (el) { el.open = false; });
      if (typing(event.target) && event.target.blur) event.target.blur();
    }
  });

  // Copy buttons: <button class="copy" data-copy-target="id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.innerText).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Lineage graphs: <div class="lineage-graph" data-figure-id="..."> + a json_script figure.
  function drawGraphs(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll(".lineage-graph[data-figure-id]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var script = document.getElementById(el.getAttribute("data-figure-id"));
      if (!script) return;
      var figure = JSON.parse(script.textContent);
      el.dataset.drawn = "1";
      window.Plotly.newPlot(el, figure.data, figure.layout, { displayModeBar: false, responsive: true });
      el.on("plotly_click", function (data) {
        var point = data && data.points && data.points[0];
        if (point && point.customdata) window.location.href = point.customdata;
      });
    });
  }

  window.addEventListener("load", function () { drawGraphs(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawGraphs(event.target); });
  window.larder = { drawGraphs: drawGraphs };
})();
