// Numbers as people read them. Unknown values are an en dash, never a made-up zero.

const DASH = "–";

export function count(value) {
  return value === null || value === undefined ? DASH : Number(value).toLocaleString("en");
}

export function duration(ms) {
  if (ms === null || ms === undefined) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function cost(usd) {
  if (usd === null || usd === undefined) return "unknown";
  if (usd === 0) return "$0";
  if (usd < 0.01) return `$${usd.toPrecision(2)}`;
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

export function percent(share) {
  return share === null || share === undefined ? DASH : `${Math.round(share * 1000) / 10}%`;
}

export function when(iso) {
  if (!iso) return DASH;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString("en-GB", { hour12: false });
}

export function tokens(usage) {
  if (!usage) return DASH;
  return `${count(usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens)}`;
}

/** The first line of a text, at most `limit` characters: for tables. */
export function excerpt(text, limit = 120) {
  if (text === null || text === undefined) return DASH;
  const line = String(text).replace(/\s+/g, " ").trim();
  return line.length > limit ? `${line.slice(0, limit - 1)}…` : line;
}
