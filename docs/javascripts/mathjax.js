// MathJax (vendored: vendor/mathjax, version 3.2.2) for two kinds of math:
// - pages and docstrings: pymdownx.arithmatex (generic mode) wraps each formula in an
//   element of class "arithmatex" with \( \) or \[ \] delimiters;
// - the example notebooks (mkdocs-jupyter): their Markdown cells (class "jp-MarkdownOutput")
//   keep the notebook's own $...$ and $$...$$, and so do their headings in the table of
//   contents and the header (Material's class "md-ellipsis").
// Everything else is left alone: an element with any class is skipped, and its descendants with
// it, unless the class is one of those; inside those, unclassed elements (a notebook's <p>) are
// processed. (MathJax's usual ".*|" matches the empty class too, so it would skip that <p>.)
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {ignoreHtmlClass: "[^ ]+", processHtmlClass: "arithmatex|jp-MarkdownOutput|md-ellipsis"},
  svg: {fontCache: "global"},
};
// Material's instant navigation swaps the page without reloading: typeset each new page.
document$.subscribe(() => {
  if (window.MathJax.typesetPromise) {
    MathJax.typesetPromise();
  }
});
