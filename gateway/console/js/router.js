// Hash routes: #/tasks, #/tasks/<id>, #/dead-letters, #/queues, #/catalog[/<name>].
// Each view renders into <main> and returns a cleanup function (timers, listeners),
// called before the next view renders.

export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, queryString = ""] = raw.split("?", 2);
  const segments = path.split("/").filter(Boolean).map(decodeURIComponent);
  return {segments, query: new URLSearchParams(queryString)};
}

export class Router {
  /**
   * @param routes [{match(segments) -> params|null, view: {render(main, ctx, params)}, nav}]
   * @param ctx    what every view gets (api, store, navigate...)
   */
  constructor(routes, ctx, main, nav) {
    this.routes = routes;
    this.ctx = ctx;
    this.main = main;
    this.nav = nav;
    this.cleanup = null;
    this.onChange = () => this.render();
  }

  start() {
    window.addEventListener("hashchange", this.onChange);
    this.render();
  }

  stop() {
    window.removeEventListener("hashchange", this.onChange);
    this.runCleanup();
  }

  runCleanup() {
    const cleanup = this.cleanup;
    this.cleanup = null;
    if (cleanup) cleanup();
  }

  render() {
    const {segments, query} = parseHash(location.hash);
    for (const route of this.routes) {
      const params = route.match(segments);
      if (!params) continue;
      this.runCleanup();
      for (const link of this.nav.querySelectorAll("a[data-nav]")) {
        if (link.dataset.nav === route.nav) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
      this.main.replaceChildren();
      this.cleanup = route.view.render(this.main, this.ctx, {...params, query}) || null;
      return;
    }
    location.replace("#/tasks");  // an unknown route: the tasks page
  }
}
