/* socialfer sign-in: the key is posted once and becomes an HttpOnly session cookie. */
"use strict";

(() => {
  const form = document.getElementById("signin-form");
  const message = document.getElementById("signin-message");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = document.getElementById("signin-key").value.trim();
    message.textContent = "Signing in…";
    try {
      await SF.api("/api/v1/session", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ key }),
      });
      window.location.assign("/");
    } catch (error) {
      message.textContent = error.status === 401 ? "That key is unknown or revoked." : error.message;
    }
  });
})();
