// The token prompt. While the console is locked it is the only thing on the page: no
// navigation, no data. It hands the token to token.js; app.js then proves it with a
// real call before unlocking anything.

import {banner, h, replaceChildren} from "./dom.js";

export class Gate {
  constructor(main, tokens) {
    this.main = main;
    this.tokens = tokens;
  }

  /** Show the prompt (with `message`, if any); resolves once a token was entered. */
  ask(message) {
    return new Promise((resolve) => {
      const input = h("input", {
        id: "token", name: "token", type: "password", autocomplete: "off", required: true,
        spellcheck: "false", "aria-describedby": "token-help",
      });
      const form = h("form", {class: "card gate", "data-testid": "token-prompt"},
        h("h1", {}, "This gateway needs a token"),
        h("p", {id: "token-help", class: "muted"},
          "Enter the bearer token the gateway was started with (CARGO_AUTH_TOKEN). ",
          "The console keeps it in this tab only and sends it to this gateway with every call."),
        message ? banner("error", message) : null,
        h("label", {for: "token"}, "Token"),
        input,
        h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Unlock")));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        this.tokens.set(token);
        replaceChildren(this.main, h("p", {class: "muted"}, "Checking the token…"));
        resolve();
      });
      replaceChildren(this.main, form);
      input.focus();
    });
  }
}
