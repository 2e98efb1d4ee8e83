// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const expander = event.target.closest(".switcher-item button.expander");  // the subaccounts table has its own (htmx only)
  if (expander) {
    const children = expander.closest(".switcher-item").querySelector(".switcher-children");
    const open = expander.getAttribute("aria-expanded") === "true";
    expander.setAttribute("aria-expanded", String(!open));  // app.css turns the arrow
    if (children && expander.dataset.loaded) children.hidden = open;
    expander.dataset.loaded = "1";
    return;
  }
  // Subaccounts table: the first click loads the nested rows (htmx, "click once"); later clicks fold and
  // unfold them. The rows below a row are the following ones with a greater data-depth.
  const rowExpander = event.target.closest("tr[data-depth] button.expander");
  if (rowExpander) {
    const row = rowExpander.closest("tr");
    const open = rowExpander.getAttribute("aria-expanded") === "true";
    rowExpander.setAttribute("aria-expanded", String(!open));  // app.css turns the arrow
    if (rowExpander.dataset.loaded) {
      const depth = Number(row.dataset.depth);
      let folded = Infinity;  // rows deeper than this stay hidden: their own parent row is folded
      for (let next = row.nextElementSibling; next && Number(next.dataset.depth) > depth; next = next.nextElementSibling) {
        const nextDepth = Number(next.dataset.depth);
        if (open) { next.hidden = true; continue; }
        if (nextDepth > folded) continue;
        folded = Infinity;
        next.hidden = false;
        const own = next.querySelector("button.expander");
        if (own && own.getAttribute("aria-expanded") !== "true") folded = nextDepth;
      }
    }
    rowExpander.dataset.loaded = "1";
    return;
  }
  // <button data-print>: print the page (no inline onclick: the Content-Security-Policy forbids it).
  if (event.target.closest("button[data-print]")) {
    window.print();
    return;
  }
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.querySelector(copy.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => { copy.textContent = "Copied"; });
    }
  }
});
// Enter in the switcher's search box must not submit the switch form.
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.matches(".switcher-search")) event.preventDefault();
});
