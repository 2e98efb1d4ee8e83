// Small progressive enhancements; every page works without them.
document.addEventListener("click", (event) => {
  const expander = event.target.closest(".switcher-item button.expander");  // the subaccounts table has its own (htmx only)
  if (expander) {
    const children = expander.closest(".switcher-item").querySelector(".switcher-children");
    const open = expander.getAttribute("aria-expanded") === "true";
    expander.setAttribute("aria-expanded", String(!open));
    expander.textContent = open ? "▸" : "▾";
    if (children && expander.dataset.loaded) children.hidden = open;
    expander.dataset.loaded = "1";
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
