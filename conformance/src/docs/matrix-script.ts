/**
 * The results matrix's filters, as the script the page carries inline (no external scripts: the
 * site opens from `file://`). It reads and writes the filter state in the URL fragment —
 * `#impl=a,b&verdict=fail&req=dev.plug.3&tag=busy` — so a filtered view can be linked, and
 * shows or hides columns (by implementation) and rows (by verdict in a shown column, by a
 * requirement the row cites, by a tag the row has).
 */

/** The fragment keys of the filter state, in the order the fragment lists them. */
export const FILTER_KEYS = ['impl', 'verdict', 'req', 'tag'] as const;

/** Verdict filter values beyond the verdicts themselves. */
export const VERDICT_FILTERS = {
  'not-pass': 'anything but pass',
  unexpected: 'not as the run expected (!)',
} as const;

/**
 * The script. It expects `form#matrix-filters` (checkboxes `impl`, selects `verdict`, `req`,
 * `tag`, button `#matrix-clear`, output `#matrix-count`) and `table#matrix` whose header cells
 * after the first carry `data-col` (the column's slug), whose rows carry `data-req` and
 * `data-tag` (space-separated) and whose result cells carry `data-v` (the verdict) and `data-u`
 * (present when unexpected).
 */
export const MATRIX_SCRIPT = `(function () {
  'use strict';
  var form = document.getElementById('matrix-filters');
  var table = document.getElementById('matrix');
  if (!form || !table) return;
  var slice = function (list) { return Array.prototype.slice.call(list); };
  var heads = slice(table.tHead.rows[0].cells).slice(1);
  var slugs = heads.map(function (th) { return th.getAttribute('data-col'); });
  var rows = slice(table.tBodies[0].rows);
  var boxes = slice(form.querySelectorAll('input[name="impl"]'));
  var count = document.getElementById('matrix-count');
  var keys = ${JSON.stringify(FILTER_KEYS)};

  function fromForm() {
    var impl = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    return { impl: impl.length === slugs.length ? [] : impl, verdict: form.elements.verdict.value, req: form.elements.req.value, tag: form.elements.tag.value };
  }
  function fromFragment() {
    var text = location.hash.replace(/^#/, '');
    if (text.indexOf('=') < 0) return null;
    var state = { impl: [], verdict: '', req: '', tag: '' };
    text.split('&').forEach(function (part) {
      var at = part.indexOf('=');
      var key = decodeURIComponent(part.slice(0, at));
      var value = decodeURIComponent(part.slice(at + 1));
      if (key === 'impl') state.impl = value === '' ? [] : value.split(',');
      else if (keys.indexOf(key) >= 0) state[key] = value;
    });
    return state;
  }
  function toFragment(state) {
    return keys.map(function (key) {
      var value = key === 'impl' ? state.impl.map(encodeURIComponent).join(',') : encodeURIComponent(state[key]);
      return value === '' ? '' : key + '=' + value;
    }).filter(function (p) { return p !== ''; }).join('&');
  }
  function select(name, value) {
    var control = form.elements[name];
    if (value !== '' && !slice(control.options).some(function (o) { return o.value === value; })) {
      var option = document.createElement('option');
      option.value = value;
      option.textContent = value + ' (no row)';
      control.appendChild(option);
    }
    control.value = value;
  }
  function toForm(state) {
    boxes.forEach(function (b) { b.checked = state.impl.length === 0 || state.impl.indexOf(b.value) >= 0; });
    select('verdict', state.verdict);
    select('req', state.req);
    select('tag', state.tag);
  }
  function has(list, word) { return (' ' + (list || '') + ' ').indexOf(' ' + word + ' ') >= 0; }
  function verdictMatches(td, verdict) {
    var v = td.getAttribute('data-v');
    if (!v) return false;
    if (verdict === 'not-pass') return v !== 'pass';
    if (verdict === 'unexpected') return td.hasAttribute('data-u');
    return v === verdict;
  }
  function apply(state) {
    var shownColumns = slugs.map(function (slug) { return state.impl.length === 0 || state.impl.indexOf(slug) >= 0; });
    heads.forEach(function (th, i) { th.hidden = !shownColumns[i]; });
    var shown = 0;
    rows.forEach(function (tr) {
      var cells = slice(tr.cells).slice(1);
      cells.forEach(function (td, i) { td.hidden = !shownColumns[i]; });
      var keep = (state.req === '' || has(tr.getAttribute('data-req'), state.req)) && (state.tag === '' || has(tr.getAttribute('data-tag'), state.tag));
      if (keep && state.verdict !== '') keep = cells.some(function (td, i) { return shownColumns[i] && verdictMatches(td, state.verdict); });
      tr.hidden = !keep;
      if (keep) shown++;
    });
    var columns = shownColumns.filter(Boolean).length;
    count.textContent = 'Showing ' + shown + ' of ' + rows.length + ' rows and ' + columns + ' of ' + slugs.length + ' columns.';
  }
  function save(state) {
    var fragment = toFragment(state);
    var url = location.href.replace(/#.*$/, '') + (fragment === '' ? '' : '#' + fragment);
    try { history.replaceState(null, '', url); } catch (e) { location.hash = fragment; }
  }
  form.addEventListener('change', function () { var state = fromForm(); apply(state); save(state); });
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  document.getElementById('matrix-clear').addEventListener('click', function () {
    var state = { impl: [], verdict: '', req: '', tag: '' };
    toForm(state); apply(state); save(state);
  });
  window.addEventListener('hashchange', function () { var state = fromFragment(); if (state) { toForm(state); apply(state); } });
  form.hidden = false;
  var initial = fromFragment();
  if (initial) toForm(initial);
  apply(initial || fromForm());
})();`;
