// Progressive enhancement only: every page works without this file.
// With scripts on, the page says so (CSS shows the Copy buttons only then).
document.documentElement.classList.add("js");
// "Copy" buttons copy the text of the element named in data-copy.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button || !navigator.clipboard) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Copy failed: select the text"; },
  );
});
