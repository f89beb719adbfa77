// The storefront's card field on a store that takes payments with Stripe (live API): Stripe.js collects the
// card in its own frame and we post only the payment method's id (pm_...). 3-D Secure happens after the
// post: the server confirms the PaymentIntent with a return URL and redirects the shopper to Stripe's page.
(function () {
  "use strict";
  var mount = document.getElementById("stripe-card");
  if (!mount || typeof Stripe === "undefined") return;
  var stripe = Stripe(mount.dataset.stripeKey);
  var card = stripe.elements().create("card", { hidePostalCode: true });
  card.mount(mount);
  var form = mount.closest("form");
  var shown = document.getElementById("stripe-card-error");
  var token = form.querySelector("input[name=payment_method]");
  form.addEventListener("submit", function (event) {
    if (token.value) return; // the second, real submit
    event.preventDefault();
    stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
      if (result.error) {
        shown.textContent = result.error.message;
        return;
      }
      token.value = result.paymentMethod.id;
      form.submit();
    });
  });
})();
