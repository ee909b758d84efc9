"""Checks run on every page the browser tests visit: text contrast (WCAG 2 AA), labelled form
fields, charts with a text alternative, a page language."""

from __future__ import annotations

from selenium.webdriver.common.by import By

# For each visible element with its own text: its colour against the first opaque background up
# its ancestors (white at the top), as the WCAG contrast ratio, and whether the text is "large".
_CONTRAST = """
const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (el) => {
  for (; el; el = el.parentElement) {
    const c = parse(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
  }
  return [255, 255, 255];
};
const found = [];
for (const el of document.querySelectorAll("body *")) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const box = el.getBoundingClientRect();
  if (!own || box.width === 0 || box.height === 0 || el.closest("svg")) continue;
  const style = getComputedStyle(el);
  if (style.visibility === "hidden") continue;
  const [a, b] = [lum(parse(style.color).slice(0, 3)), lum(background(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  found.push([el.tagName + " " + el.textContent.trim().slice(0, 40), ratio, large]);
}
return found;
"""


def assert_accessible(driver) -> None:
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    texts = driver.execute_script(_CONTRAST)
    assert texts, "no text measured"
    poor = [
        (what, round(ratio, 2)) for what, ratio, large in texts if ratio < (3 if large else 4.5)
    ]
    assert not poor, f"text below WCAG AA contrast: {poor}"
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden])"):
        field_id = field.get_attribute("id")
        labels = driver.find_elements(By.CSS_SELECTOR, f"label[for='{field_id}']")
        assert field_id and labels and labels[0].text, f"unlabelled field {field_id!r}"
    for chart in driver.find_elements(By.CSS_SELECTOR, "svg[role=img]"):
        named = chart.get_attribute("aria-labelledby") or chart.get_attribute("aria-label")
        assert named, "a chart without a text alternative"
