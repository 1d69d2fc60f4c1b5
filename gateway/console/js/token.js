// The bearer token, kept in this tab's sessionStorage: gone when the tab closes, never
// written anywhere else, and sent only to this gateway.

const KEY = "cargo.console.token";

export const tokenStore = {
  get() {
    return sessionStorage.getItem(KEY) || "";
  },
  set(token) {
    sessionStorage.setItem(KEY, token);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};
