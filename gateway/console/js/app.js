// The console's entry point: it shows nothing but the token prompt until a real call
// to the API succeeds (with no auth on the gateway, the first one does), then opens
// the live feed (and, once it is subscribed, loads the recent tasks) and the pages. A 401 at any time locks it again: the feed stops, what
// it knew is dropped, and the prompt comes back.

import {Api, describeError} from "./api.js";
import {banner, h, replaceChildren} from "./dom.js";
import {Gate} from "./gate.js";
import {LiveFeed} from "./live.js";
import {RecentTasks} from "./recent.js";
import {Router} from "./router.js";
import {TaskStore} from "./task-store.js";
import {tokenStore} from "./token.js";
import * as catalogView from "./views/catalog.js";
import * as deadLettersView from "./views/dead-letters.js";
import * as queuesView from "./views/queues.js";
import * as taskView from "./views/task.js";
import * as tasksView from "./views/tasks.js";

const RETRY_MS = 3000;

const routes = [
  {match: (s) => (s.length === 0 || (s.length === 1 && s[0] === "tasks") ? {} : null),
    view: tasksView, nav: "tasks"},
  {match: (s) => (s.length === 2 && s[0] === "tasks" ? {taskId: s[1]} : null),
    view: taskView, nav: "tasks"},
  {match: (s) => (s.length === 1 && s[0] === "dead-letters" ? {} : null),
    view: deadLettersView, nav: "dead-letters"},
  {match: (s) => (s.length === 1 && s[0] === "queues" ? {} : null),
    view: queuesView, nav: "queues"},
  {match: (s) => (s[0] === "catalog" && s.length <= 2 ? {name: s[1] || null} : null),
    view: catalogView, nav: "catalog"},
];

class Console {
  constructor() {
    this.main = document.getElementById("main");
    this.nav = document.getElementById("nav");
    this.status = document.getElementById("live-status");
    this.forget = document.getElementById("forget-token");
    this.unlocked = false;
    this.api = new Api(tokenStore, () => this.lock(
      "The gateway refused the token (401). Enter the current one."));
    this.store = new TaskStore();
    this.recent = new RecentTasks(this.api, this.store);
    this.live = new LiveFeed(this.api, this.store, this.status, () => this.recent.load());
    this.gate = new Gate(this.main, tokenStore);
    this.ctx = {
      api: this.api,
      store: this.store,
      recent: this.recent,
      live: this.live,
      prefs: {},           // each page's filters, kept while the tab is open
      catalogNames: [],
      navigate: (hash) => { location.hash = hash; },
    };
    this.router = new Router(routes, this.ctx, this.main, this.nav);
    this.forget.addEventListener("click", () => {
      tokenStore.clear();
      this.lock("The token was forgotten.");
    });
  }

  /** Until a call succeeds: the prompt on a 401, a notice while the gateway is away. */
  async unlock(message = "") {
    let reason = message;
    for (;;) {
      try {
        const catalog = await this.api.get("catalog");
        this.ctx.catalogNames = (catalog.items || []).map((item) => item.name);
        break;
      } catch (err) {
        if (err.status === 401) {
          await this.gate.ask(tokenStore.get() && !reason
            ? "The gateway refused this token." : reason);
          reason = "";
          continue;
        }
        replaceChildren(this.main, banner("error",
          `The gateway is not answering: ${describeError(err)}. Trying again…`));
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
    this.unlocked = true;
    this.nav.hidden = false;
    this.status.hidden = false;
    this.forget.hidden = !tokenStore.get();
    this.live.start();
    this.router.start();
  }

  lock(message) {
    if (!this.unlocked) return;  // the unlock loop is already asking
    this.unlocked = false;
    this.router.stop();
    this.live.stop();
    this.store.reset();
    this.recent.reset();
    this.nav.hidden = true;
    this.status.hidden = true;
    this.forget.hidden = true;
    replaceChildren(this.main, h("p", {class: "muted"}, "Locked."));
    this.unlock(message);
  }
}

new Console().unlock();
