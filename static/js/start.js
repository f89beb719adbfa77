// Opening a store: the address follows the shop's name until edited by hand, and the country suggests
// its currency and time zone until those are edited by hand. The server checks everything again.
(function () {
  "use strict";
  function slugify(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
  }
  function init() {
    var name = document.getElementById("f-store_name");
    var slug = document.getElementById("f-slug");
    var country = document.getElementById("f-country");
    var currency = document.getElementById("f-currency");
    var timezone = document.getElementById("f-timezone");
    if (!name || !slug) return;
    var touched = { slug: slug.value !== "", currency: false, timezone: false };
    slug.addEventListener("input", function (e) { if (e.isTrusted) touched.slug = true; });
    currency.addEventListener("input", function () { touched.currency = true; });
    timezone.addEventListener("input", function () { touched.timezone = true; });
    name.addEventListener("input", function () {
      if (touched.slug) return;
      slug.value = slugify(name.value);
      slug.dispatchEvent(new Event("input", { bubbles: true }));
    });
    country.addEventListener("change", function () {
      var option = country.options[country.selectedIndex];
      if (!touched.currency) currency.value = option.dataset.currency;
      if (!touched.timezone) timezone.value = option.dataset.timezone;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
