// This browser's own preferences (not the server's look, which every viewer shares): kept in
// localStorage under "agecast.<name>", so a reload or the next day keeps them. A browser that
// refuses storage (private mode, a full disk) still works; it just forgets.

const PREFIX = "agecast.";

export function loadPref(name, fallback) {
  try {
    const text = localStorage.getItem(PREFIX + name);
    return text == null ? fallback : JSON.parse(text);
  } catch {
    return fallback;
  }
}

export function savePref(name, value) {
  try {
    localStorage.setItem(PREFIX + name, JSON.stringify(value));
  } catch (err) {
    console.warn(`agecast: cannot remember ${name}:`, err?.message ?? err);
  }
}
