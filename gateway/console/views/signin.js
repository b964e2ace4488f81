// Sign in with the server's own auth (email and password), or create an
// account where the app lets anyone sign up.

import { call, setToken } from "../api.js";
import { errorBox, fill, h } from "../dom.js";

export function render(done) {
  let signingUp = false;
  const name = h("input", { id: "name", autocomplete: "name" });
  const email = h("input", { id: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
  const problem = h("div", { id: "sign-in-error" });
  const nameRow = h("label", { hidden: true }, "Name", name);
  const title = h("h1", {}, "objectstack console");
  const submit = h("button", { type: "submit", id: "sign-in" }, "Sign in");
  const toggle = h("button", { type: "button", class: "link", id: "toggle-sign-up", onclick: () => {
    signingUp = !signingUp;
    nameRow.hidden = !signingUp;
    submit.textContent = signingUp ? "Create the account" : "Sign in";
    toggle.textContent = signingUp ? "I have an account" : "Create an account";
    password.autocomplete = signingUp ? "new-password" : "current-password";
  } }, "Create an account");
  const form = h("form", { class: "card sign-in", onsubmit: async (event) => {
    event.preventDefault();
    fill(problem);
    try {
      const route = signingUp ? "/api/v1/auth/sign-up/email" : "/api/v1/auth/sign-in/email";
      const body = signingUp ? { email: email.value, password: password.value, name: name.value || email.value } : { email: email.value, password: password.value };
      const { data } = await call("POST", route, body);
      setToken(data.token);
      await done();
    } catch (error) {
      fill(problem, errorBox(error));
    }
  } }, title, nameRow, h("label", {}, "Email", email), h("label", {}, "Password", password), problem, submit, toggle);
  return h("div", { class: "center" }, form);
}
