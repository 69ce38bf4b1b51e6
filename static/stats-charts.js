/* Draws the statistics charts (catalog/partials/*_body.html): a div.stats-chart names a
   json_script holding {data, layout} built by catalog/charts.py. plotly.js is the page's
   (served from the installed plotly package). Loaded by each panel; runs its setup once. */
(function () {
  "use strict";
  if (window.larderStatsCharts) return;

  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll(".stats-chart[data-figure-id]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var script = document.getElementById(el.getAttribute("data-figure-id"));
      if (!script) return;
      var figure = JSON.parse(script.textContent);
      el.dataset.drawn = "1";
      window.Plotly.newPlot(el, figure.data, figure.layout, { displayModeBar: false, responsive: true });
    });
  }

  window.larderStatsCharts = { draw: draw };
  if (document.readyState === "complete") draw(document);
  window.addEventListener("load", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
})();
