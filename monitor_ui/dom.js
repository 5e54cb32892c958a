// A panel's elements, looked up once: elements(doc, { list: "cast-members", … }) gives
// { list: <the element with that id>, … } (null where the page has none), for a panel's
// constructor to keep as its own fields.
export function elements(doc, ids) {
  return Object.fromEntries(Object.entries(ids).map(([key, id]) => [key, doc.getElementById(id)]));
}
