// How values look in the console: times, durations, sizes, JSON.

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** "2024-05-01 12:03:04.123" in the browser's time zone; the raw value when unparsable. */
export function formatTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    `${pad(d.getMilliseconds(), 3)}`;
}

/** "12:03:04" for table cells; the full time goes in the title. */
export function formatClock(ts) {
  const full = formatTime(ts);
  return full.length > 11 ? full.slice(11, 19) : full;
}

/** "3 s ago", "5 min ago", "2 h ago" (or "in the future" for a skewed clock). */
export function formatAgo(ts, now = Date.now()) {
  const then = new Date(ts).getTime();
  if (Number.isNaN(then)) return String(ts ?? "");
  const seconds = Math.round((now - then) / 1000);
  if (seconds < -5) return "in the future";
  if (seconds < 60) return `${Math.max(seconds, 0)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

/** The time from `start` to `end` (RFC 3339), as "850 ms" or "12.3 s". */
export function formatDuration(start, end) {
  const ms = new Date(end).getTime() - new Date(start).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatBytes(bytes) {
  if (typeof bytes !== "number" || !Number.isFinite(bytes)) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Compact JSON for a table cell, pretty JSON for a block. */
export function formatJson(value, pretty = false) {
  try {
    return JSON.stringify(value, null, pretty ? 2 : 0) ?? "undefined";
  } catch {
    return String(value);
  }
}

/** `{done, total}` progress as a fraction, or null when the task reported something else. */
export function progressOf(progress) {
  if (!progress || typeof progress !== "object") return null;
  const {done, total} = progress;
  if (typeof done !== "number" || typeof total !== "number" || total <= 0) return null;
  return {done: Math.min(Math.max(done, 0), total), total};
}
