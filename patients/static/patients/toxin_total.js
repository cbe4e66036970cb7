// The running total of a toxin session's units, and the 30-day limit of DOMAIN.md section 4
// counted with the patient's other sessions of the same product, shown while the units are typed.
// Only a help: the service checks the limit on saving and refuses on the form.
(function () {
  "use strict";
  const DAY = 86400000;

  function dayNumber(text) {
    const time = Date.parse(text + "T00:00:00Z");
    return Number.isNaN(time) ? null : Math.round(time / DAY);
  }

  function worstWindow(sessions, on, units, windowDays) {
    // Every window of `windowDays` days that holds the session being recorded.
    let worst = units;
    for (let start = on - windowDays + 1; start <= on; start += 1) {
      let total = units;
      for (const s of sessions) {
        if (s.day >= start && s.day < start + windowDays) total += s.units;
      }
      worst = Math.max(worst, total);
    }
    return worst;
  }

  function update(box) {
    const limit = Number(box.dataset.limit);
    const windowDays = Number(box.dataset.window);
    const all = JSON.parse(document.getElementById("toxin-sessions").textContent);
    const product = document.getElementById("id_botulinum_toxin-product").value;
    const on = dayNumber(document.getElementById("id_treatment-started_on").value);
    let units = 0;
    for (const input of box.querySelectorAll("input[data-units]")) {
      const value = Number(input.value);
      if (input.value !== "" && value > 0) units += value;
    }
    const out = document.getElementById("toxin-total");
    let text = "Total of this session: " + units + " U.";
    let over = false;
    if (on !== null) {
      const same = all
        .filter((s) => s.product === product)
        .map((s) => ({ day: dayNumber(s.on), units: s.units }));
      const worst = worstWindow(same, on, units, windowDays);
      if (worst > units) {
        text += " With this product's other sessions: " + worst + " U within " + windowDays + " days";
      } else {
        text += " No other session of this product within " + windowDays + " days";
      }
      over = worst > limit;
      text += over ? ", more than the " + limit + " U allowed: it will be refused." : " (at most " + limit + " U).";
    }
    out.textContent = text;
    out.classList.toggle("hfs-over", over);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const box = document.getElementById("toxin-units");
    if (!box) return;
    const form = box.closest("form");
    form.addEventListener("input", () => update(box));
    form.addEventListener("change", () => update(box));
    update(box);
  });
})();
