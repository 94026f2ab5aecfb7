// The Audit Logs page: plain browser JavaScript, no build step, every asset served by the app.
const TOKEN_KEY = 'auditLog.token';
const PAGE_SIZE = 50;
const TYPING_DELAY = 400;
const UNREACHABLE = 'The service cannot be reached: check your connection, then retry.';
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};
/** A table row of `[column name, content]` cells; each cell names its column for the phone's cards. */
const labelledRow = (cells) => {
  const row = el('tr');
  for (const [label, content] of cells) {
    const cell = el('td', {}, content);
    cell.dataset.label = label;
    row.append(cell);
  }
  return row;
};

const state = {
  token: null,
  me: null,
  workspaceId: null,
  tab: 'log',
  cursor: null,
  seq: 0,
  entries: new Map(),
  users: [],
  resourceLabel: '',
  detail: null,
  retry: null,
  rCursor: null,
  rSeq: 0,
  /** id → Promise of { name, resourceType, deleted } or null: the names of resources a diff refers to. */
  names: new Map(),
  /** requestId → Promise of the number of entries it produced (200 meaning "200 or more"). */
  requestCounts: new Map(),
};

const DATE_OPTIONS = {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
};
const dateFormat = new Intl.DateTimeFormat(undefined, DATE_OPTIONS);
const dayFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
/** Chromium's ICU still names some zones by their former city (Asia/Calcutta): the page uses today's name. */
const RENAMED_ZONES = {
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Asia/Rangoon': 'Asia/Yangon',
  'Europe/Kiev': 'Europe/Kyiv',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
};
const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const timeZone = RENAMED_ZONES[browserZone] ?? browserZone;
const zoneName = new Intl.DateTimeFormat('en-US', { timeZoneName: 'longGeneric' })
  .formatToParts(new Date())
  .find((part) => part.type === 'timeZoneName')?.value;
/** What GET …/resources lists; the log's types and actions come from GET …/audit-logs/filters. */
const LISTED_TYPES = ['source', 'model', 'segment', 'destination'];
const TAB_TITLES = { log: 'Audit Logs', resources: 'Resources', members: 'Members', tokens: 'API tokens' };
const RANGES = { '24h': ['Last 24 hours', 24], '7d': ['Last 7 days', 24 * 7], '30d': ['Last 30 days', 24 * 30] };
const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);
/** `api_token` → "API token", `audit_log` → "Audit log". */
const typeLabel = (type) => capital(type.replace(/_/g, ' ')).replace(/^Api\b/, 'API');

/** One section at a time; the tabs show while a workspace is open, `tab` marked as the current one. */
function show(section, tab = section) {
  for (const id of ['sign-in', 'log', 'resources', 'members', 'tokens', 'denied']) $(id).hidden = id !== section;
  $('tabs').hidden = section === 'sign-in' || !state.workspaceId;
  for (const link of $('tabs').querySelectorAll('a')) {
    if (link.dataset.tab === tab) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${TAB_TITLES[tab] ?? 'Sign in'} · Settings`;
}

function setStatus(text, isError = false, id = 'status') {
  $(id).textContent = text;
  $(id).classList.toggle('error', isError);
}

async function api(path, { raw = false, method = 'GET', body: sent } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (sent !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api${path}`, {
      method,
      headers,
      body: sent === undefined ? undefined : JSON.stringify(sent),
    });
  } catch {
    // No answer at all (the server stopped, the network gone) reads like an unavailable service.
    res = new Response(JSON.stringify({ message: UNREACHABLE }), {
      status: 503,
      headers: { 'Content-Type': 'application/json' },
    });
  }
  if (res.status === 401) {
    signOut('Your token is unknown or was revoked. Paste a valid one.');
    throw new Error('unauthorized');
  }
  if (raw) return res;
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body, retryAfter: res.headers.get('Retry-After') };
}
const wsPath = (path) => `/workspaces/${state.workspaceId}${path}`;

function messageOf(body) {
  const message = body && body.message;
  return Array.isArray(message) ? message.join('; ') : message || 'Something went wrong.';
}

/** Who acted: a user, a system job, or a change made directly in the database. */
function actorText(entry, long = false) {
  const actor = entry.actor ?? { kind: entry.user ? 'user' : 'system', name: entry.user?.name ?? 'unknown' };
  if (actor.kind === 'user' && entry.user) return long ? `${entry.user.name} <${entry.user.email}>` : entry.user.name;
  if (actor.kind === 'database') return `Database: ${actor.name}`;
  if (actor.kind === 'system') return `System: ${actor.name}`;
  return actor.name;
}
const personText = (user) => (user ? user.name : 'No user (system or database)');

// ---- sign in / out -------------------------------------------------------------------------

/** Back to the sign-in form; with `retryToken` (the API failed, not the token), it stays saved and filled in. */
function signOut(reason = '', retryToken = '') {
  if (!retryToken) localStorage.removeItem(TOKEN_KEY);
  $('token').value = retryToken;
  Object.assign(state, { token: null, me: null, workspaceId: null, workspace: null });
  $('who').textContent = '';
  $('sign-out').hidden = true;
  $('workspace-picker').hidden = true;
  $('sign-in-error').textContent = reason;
  show('sign-in');
  $('token').focus();
}

async function signIn(token) {
  state.token = token;
  let me;
  try {
    me = await api('/me');
  } catch {
    return;
  }
  if (me.status !== 200) return signOut(messageOf(me.body), token);
  localStorage.setItem(TOKEN_KEY, token);
  state.me = me.body;
  $('who').textContent = `${me.body.user.name} · ${me.body.user.email}`;
  $('sign-out').hidden = false;
  const workspaces = me.body.workspaces;
  if (workspaces.length === 0) {
    $('denied-title').textContent = 'No workspace yet';
    $('denied-text').textContent = 'You are not a member of any workspace yet.';
    return show('denied');
  }
  const picker = $('workspace');
  picker.replaceChildren(...workspaces.map((w) => new Option(`${w.name} (${w.role})`, w.id)));
  $('workspace-picker').hidden = workspaces.length < 2;
  const wanted = new URLSearchParams(location.search).get('workspace');
  const chosen = workspaces.find((w) => w.id === wanted) ?? workspaces[0];
  picker.value = chosen.id;
  // An address without a workspace (?entry=…, ?tab=…) is read in the workspace opened first.
  await openWorkspace(chosen.id, { keepFilters: !wanted || chosen.id === wanted });
}

// ---- multi-selects: a disclosure with checkboxes (plain click toggles) ------------------------

function buildMulti(container, options) {
  const label = container.dataset.label;
  const summary = el(
    'summary',
    {},
    el('span', { className: 'multi-label' }, label),
    el('span', { className: 'multi-value' }),
  );
  const list = el('fieldset', { className: 'multi-options' }, el('legend', { className: 'sr-only' }, label));
  for (const option of options) {
    const box = el('input', { type: 'checkbox', value: option.value, name: container.dataset.name });
    list.append(el('label', { className: 'check', title: option.title ?? '' }, box, option.label));
  }
  const panel = el('div', { className: 'multi-panel' });
  if (container.dataset.search) {
    const search = el('input', { type: 'search', placeholder: container.dataset.search });
    search.setAttribute('aria-label', container.dataset.search);
    search.addEventListener('input', () => {
      const needle = search.value.trim().toLowerCase();
      for (const item of list.querySelectorAll('label')) item.hidden = !item.textContent.toLowerCase().includes(needle);
    });
    panel.append(search);
  }
  panel.append(list);
  container.replaceChildren(el('details', {}, summary, panel));
  summarizeMulti(container);
}

const boxes = (container) => [...container.querySelectorAll('input[type=checkbox]')];
const multiValues = (container) =>
  boxes(container)
    .filter((b) => b.checked)
    .map((b) => b.value);
const optionLabel = (container, value) =>
  boxes(container)
    .find((b) => b.value === value)
    ?.parentElement.textContent.trim() ?? value;

function setMulti(container, values) {
  for (const box of boxes(container)) box.checked = values.includes(box.value);
  summarizeMulti(container);
}

function summarizeMulti(container) {
  const values = multiValues(container);
  const text =
    values.length === 0
      ? 'All'
      : values.length <= 2
        ? values.map((v) => optionLabel(container, v).replace(/ \(.*\)$/, '')).join(', ')
        : `${values.length} selected`;
  const value = container.querySelector('.multi-value');
  if (value) value.textContent = `: ${text}`;
}

document.addEventListener('click', (event) => {
  for (const open of document.querySelectorAll('details[open]')) if (!open.contains(event.target)) open.open = false;
});
document.addEventListener('focusout', (event) => {
  const open = event.target.closest?.('details[open]');
  if (open && event.relatedTarget && !open.contains(event.relatedTarget)) open.open = false;
});
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  const open = event.target.closest?.('details[open]');
  if (open) {
    open.open = false;
    open.querySelector('summary').focus();
  }
});

// ---- dates: presets, or a custom range by day with optional times --------------------------

const pad = (n) => String(n).padStart(2, '0');
const dayOf = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
const timeOf = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}`;
function localDate(day, time = '00:00') {
  const [y, m, d] = day.split('-').map(Number);
  const [h, min] = time.split(':').map(Number);
  return new Date(y, m - 1, d, h, min);
}
function describeLocal(day, time) {
  const text = dayFormat.format(localDate(day));
  return time ? `${text} ${time}` : text;
}

/** The custom range as the API's instants: the end day is included, an end time includes its minute. */
function customRange(f) {
  const errors = { from: '', to: '' };
  if (!f.fromDay && f.fromTime) errors.from = 'Pick a day for this time.';
  if (!f.toDay && f.toTime) errors.to = 'Pick a day for this time.';
  const from = f.fromDay ? localDate(f.fromDay, f.fromTime || '00:00') : null;
  let to = null;
  if (f.toDay) {
    to = f.toTime ? new Date(localDate(f.toDay, f.toTime).getTime() + 60_000) : localDate(f.toDay);
    if (!f.toTime) to.setDate(to.getDate() + 1);
  }
  if (from && to && from >= to) {
    errors.to = `The end (${describeLocal(f.toDay, f.toTime)}) is before the start (${describeLocal(f.fromDay, f.fromTime)}).`;
  }
  return { from: from?.toISOString() ?? '', to: to?.toISOString() ?? '', errors };
}

// ---- filters, the URL and history ----------------------------------------------------------

const emptyFilters = () => ({
  userId: [],
  resourceType: [],
  action: [],
  resourceName: '',
  resourceId: '',
  requestId: '',
  range: '',
  fromDay: '',
  fromTime: '',
  toDay: '',
  toTime: '',
});

function filtersFromForm() {
  return {
    userId: multiValues($('f-user')),
    resourceType: multiValues($('f-type')),
    action: multiValues($('f-action')),
    resourceName: $('f-name').value.trim(),
    resourceId: state.filters.resourceId,
    requestId: state.filters.requestId,
    range: $('f-range').value,
    fromDay: $('f-from-day').value,
    fromTime: $('f-from-time').value,
    toDay: $('f-to-day').value,
    toTime: $('f-to-time').value,
  };
}

function filtersToForm(f) {
  setMulti($('f-user'), f.userId);
  setMulti($('f-type'), f.resourceType);
  setMulti($('f-action'), f.action);
  $('f-name').value = f.resourceName;
  $('f-range').value = f.range;
  $('custom-range').hidden = f.range !== 'custom';
  $('f-from-day').value = f.fromDay;
  $('f-from-time').value = f.fromTime;
  $('f-to-day').value = f.toDay;
  $('f-to-time').value = f.toTime;
}

/** The API query for the filters, or null while the custom range has an error. */
function apiQuery(f) {
  const query = new URLSearchParams();
  for (const key of ['userId', 'resourceType', 'action']) if (f[key].length) query.set(key, f[key].join(','));
  for (const key of ['resourceName', 'resourceId', 'requestId']) if (f[key]) query.set(key, f[key]);
  if (RANGES[f.range]) {
    query.set('from', new Date(Date.now() - RANGES[f.range][1] * 3_600_000).toISOString());
  } else if (f.range === 'custom') {
    const range = customRange(f);
    if (range.errors.from || range.errors.to) return null;
    if (range.from) query.set('from', range.from);
    if (range.to) query.set('to', range.to);
  }
  return query;
}

/** The page address: the filters as typed (custom ranges as instants, so a shared link means the same time). */
function urlQuery(f) {
  const query = new URLSearchParams({ workspace: state.workspaceId });
  for (const key of ['userId', 'resourceType', 'action']) if (f[key].length) query.set(key, f[key].join(','));
  for (const key of ['resourceName', 'resourceId', 'requestId']) if (f[key]) query.set(key, f[key]);
  if (RANGES[f.range]) query.set('range', f.range);
  else if (f.range === 'custom') {
    const range = customRange(f);
    if (range.from) query.set('from', range.from);
    if (range.to) query.set('to', range.to);
    if (!range.from && !range.to) query.set('range', 'custom');
  }
  return query;
}

function filtersFromUrl(query) {
  const f = emptyFilters();
  const list = (key, allowed) =>
    (query.get(key) ?? '').split(',').filter((v) => v && (!allowed || allowed.includes(v)));
  f.userId = list('userId');
  f.resourceType = list('resourceType', state.choices.resourceTypes);
  f.action = list('action', state.choices.actions);
  f.resourceName = query.get('resourceName') ?? '';
  f.resourceId = query.get('resourceId') ?? '';
  f.requestId = query.get('requestId') ?? '';
  const range = query.get('range') ?? '';
  if (RANGES[range] || range === 'custom') f.range = range;
  const from = query.get('from') ? new Date(query.get('from')) : null;
  const to = query.get('to') ? new Date(query.get('to')) : null;
  if ((from && !isNaN(from)) || (to && !isNaN(to))) {
    f.range = 'custom';
    if (from && !isNaN(from)) {
      f.fromDay = dayOf(from);
      f.fromTime = timeOf(from) === '00:00' ? '' : timeOf(from);
    }
    if (to && !isNaN(to)) {
      if (timeOf(to) === '00:00') f.toDay = dayOf(new Date(to.getTime() - 1));
      else {
        const last = new Date(to.getTime() - 60_000);
        f.toDay = dayOf(last);
        f.toTime = timeOf(last);
      }
    }
  }
  return f;
}

function showFieldErrors(f) {
  const { errors } =
    f.range === 'custom'
      ? customRange(f)
      : {
          errors: { from: '', to: '' },
        };
  for (const [key, ids] of [
    ['from', ['f-from-day', 'f-from-time']],
    ['to', ['f-to-day', 'f-to-time']],
  ]) {
    $(`f-${key}-error`).textContent = errors[key];
    for (const id of ids) $(id).setAttribute('aria-invalid', String(Boolean(errors[key])));
  }
  return !errors.from && !errors.to;
}

/** A filter changed in the form: one history entry and one request. */
function filtersChanged() {
  state.filters = filtersFromForm();
  $('custom-range').hidden = state.filters.range !== 'custom';
  for (const c of [$('f-user'), $('f-type'), $('f-action')]) summarizeMulti(c);
  renderChips();
  if (!showFieldErrors(state.filters)) return showNoEntries();
  history.pushState(null, '', `${location.pathname}?${urlQuery(state.filters)}`);
  void reload();
}

/** Wrong dates: nothing is requested, and the rows of the previous filters are not left on show. */
function showNoEntries() {
  state.seq++;
  state.cursor = null;
  state.entries.clear();
  $('rows').replaceChildren();
  $('more').hidden = true;
  $('retry-box').hidden = true;
  setLoading('log', false);
  setStatus('Correct the dates to see entries.', true);
}

function applyFilters(f, { push = true } = {}) {
  state.filters = f;
  filtersToForm(f);
  renderChips();
  showFieldErrors(f);
  if (push) history.pushState(null, '', `${location.pathname}?${urlQuery(f)}`);
  void reload();
}

function renderChips() {
  const f = state.filters;
  const chips = [];
  const remove = (change) => () => applyFilters({ ...state.filters, ...change(state.filters) });
  for (const [key, label, container] of [
    ['userId', 'User', $('f-user')],
    ['resourceType', 'Type', $('f-type')],
    ['action', 'Action', $('f-action')],
  ]) {
    for (const value of f[key]) {
      const name = optionLabel(container, value).replace(/ \(.*\)$/, '');
      chips.push([`${label}: ${name}`, remove((s) => ({ [key]: s[key].filter((v) => v !== value) }))]);
    }
  }
  if (f.resourceName) chips.push([`Name contains “${f.resourceName}”`, remove(() => ({ resourceName: '' }))]);
  if (f.resourceId) {
    chips.push([`Resource: ${state.resourceLabel || f.resourceId}`, remove(() => ({ resourceId: '' }))]);
  }
  if (f.requestId) chips.push([`Request: ${f.requestId}`, remove(() => ({ requestId: '' }))]);
  const dates = { range: '', fromDay: '', fromTime: '', toDay: '', toTime: '' };
  if (RANGES[f.range]) chips.push([RANGES[f.range][0], remove(() => dates)]);
  if (f.range === 'custom' && (f.fromDay || f.toDay)) {
    const text = [
      f.fromDay ? `from ${describeLocal(f.fromDay, f.fromTime)}` : '',
      f.toDay ? `to ${describeLocal(f.toDay, f.toTime)}${f.toTime ? '' : ' (included)'}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    chips.push([`Date ${text}`, remove(() => dates)]);
  }
  showChips($('chips'), chips);
  $('clear').hidden = chips.length === 0 && !f.range;
}

/** Each active filter as a chip whose button removes it. */
function showChips(list, chips) {
  list.replaceChildren(
    ...chips.map(([text, onRemove]) => {
      const button = el('button', { type: 'button', className: 'chip-remove', textContent: '×' });
      button.setAttribute('aria-label', `Remove filter ${text}`);
      button.addEventListener('click', onRemove);
      return el('li', { className: 'chip' }, el('span', {}, text), button);
    }),
  );
}

// ---- the audit log table ----------------------------------------------------------------------

async function openWorkspace(workspaceId, { keepFilters }) {
  state.workspaceId = workspaceId;
  state.names.clear();
  state.requestCounts.clear();
  const workspace = state.me.workspaces.find((w) => w.id === workspaceId);
  state.workspace = workspace;
  for (const id of ['tab-resources', 'tab-members']) $(id).hidden = workspace.role !== 'admin';
  const address = new URLSearchParams(keepFilters ? location.search : '');
  address.set('workspace', workspaceId);
  history.replaceState(null, '', `${location.pathname}?${address}`);
  if (workspace.role === 'admin' && !(await loadChoices())) return;
  $('zone').textContent = `Times are shown in your timezone, ${timeZone}${zoneName ? ` (${zoneName})` : ''}.`;
  await route();
}

/** The filter bar's choices, as the API lists them: users, resource types and actions. */
async function loadChoices() {
  const choices = await api(wsPath('/audit-logs/filters')).catch(() => null);
  if (!choices) return false;
  if (choices.status !== 200) {
    setStatus(messageOf(choices.body), true);
    return true;
  }
  state.users = choices.body.users;
  state.choices = { resourceTypes: choices.body.resourceTypes, actions: choices.body.actions };
  const userOptions = state.users.map((u) => ({ value: u.id, label: `${u.name} (${u.email})`, title: u.email }));
  buildMulti($('f-user'), userOptions);
  buildMulti(
    $('f-type'),
    state.choices.resourceTypes.map((t) => ({ value: t, label: typeLabel(t) })),
  );
  buildMulti(
    $('f-action'),
    state.choices.actions.map((a) => ({ value: a, label: capital(a) })),
  );
  buildMulti(
    $('r-type'),
    LISTED_TYPES.map((t) => ({ value: t, label: typeLabel(t) })),
  );
  buildMulti($('r-created'), userOptions);
  buildMulti($('r-updated'), userOptions);
  return true;
}

/** Shows what the address says: the tab, its filters, and an entry's detail. */
async function route() {
  const query = new URLSearchParams(location.search);
  if (!query.has('entry') && $('detail').open) $('detail').close();
  forgetNewToken();
  state.tab = TAB_TITLES[query.get('tab')] ? query.get('tab') : 'log';
  if (state.tab === 'tokens') {
    show('tokens');
    return loadTokens();
  }
  if (state.workspace.role !== 'admin') {
    $('denied-title').textContent =
      `${TAB_TITLES[state.tab]} ${state.tab === 'members' ? 'are managed by' : 'are for'} admins only`;
    $('denied-text').textContent = `Your role in ${state.workspace.name} is member. Ask a workspace admin for access.`;
    return show('denied', state.tab);
  }
  if (state.tab === 'members') {
    show('members');
    return loadMembers();
  }
  if (state.tab === 'resources') {
    show('resources');
    resourceFiltersToForm(query);
    renderResourceChips();
    return loadResources();
  }
  show('log');
  const f = filtersFromUrl(query);
  if (f.resourceId !== state.filters.resourceId) state.resourceLabel = '';
  state.filters = f;
  filtersToForm(f);
  renderChips();
  showFieldErrors(f);
  await reload({ write: false });
  const entryId = query.get('entry');
  if (entryId) await openEntry(entryId);
}

async function reload() {
  state.cursor = null;
  state.entries.clear();
  $('rows').replaceChildren();
  await loadPage();
}

/** `data-state` on the log section tells tests and assistive tech when a page has arrived. */
function setLoading(section, loading) {
  $(section).dataset.state = loading ? 'loading' : 'ready';
  $(section).setAttribute('aria-busy', String(loading));
}

/** Retry after a 429 (how long to wait) or a 503 (the API's reason, such as a lost database). */
function showRetry(res, again) {
  const seconds = Number(res.retryAfter) || 60;
  const at = new Date(Date.now() + seconds * 1000).toLocaleTimeString();
  $('retry-text').textContent =
    res.status === 503
      ? messageOf(res.body)
      : `Too many requests: the rate limit is reached. Try again in ${seconds} seconds (at ${at}).`;
  $('retry-box').hidden = false;
  state.retry = again;
}

async function loadPage() {
  const seq = ++state.seq;
  $('retry-box').hidden = true;
  const query = apiQuery(state.filters);
  if (!query) return setStatus('Correct the dates to see entries.', true);
  setLoading('log', true);
  setStatus('Loading…');
  $('more').disabled = true;
  query.set('limit', String(PAGE_SIZE));
  if (state.cursor) query.set('cursor', state.cursor);
  let page;
  try {
    page = await api(wsPath(`/audit-logs?${query}`));
  } catch {
    return;
  }
  if (seq !== state.seq) return; // a newer request superseded this one
  setLoading('log', false);
  $('more').disabled = false;
  if (page.status === 403) return setStatus(messageOf(page.body), true);
  if (page.status === 429 || page.status === 503) {
    setStatus('');
    return showRetry(page, () => loadPage());
  }
  if (page.status !== 200) {
    $('more').hidden = true;
    return setStatus(messageOf(page.body), true);
  }
  for (const entry of page.body.items) appendRow(entry);
  if (state.filters.resourceId && !state.resourceLabel && page.body.items[0]) {
    const newest = page.body.items[0];
    state.resourceLabel = `${newest.resourceType} “${newest.resourceName}”`;
    renderChips();
  }
  state.cursor = page.body.nextCursor;
  $('more').hidden = !state.cursor;
  const count = $('rows').children.length;
  setStatus(
    count === 0
      ? 'No entries match these filters.'
      : `${count} entr${count === 1 ? 'y' : 'ies'} shown${state.cursor ? '' : ' (all)'}.`,
  );
}

const entryHref = (id) => `${location.pathname}?workspace=${state.workspaceId}&entry=${id}`;

function appendRow(entry) {
  state.entries.set(entry.id, entry);
  const time = el('time', { dateTime: entry.occurredAt, textContent: dateFormat.format(new Date(entry.occurredAt)) });
  const link = el('a', { href: entryHref(entry.id), tabIndex: -1, className: 'entry-link' }, time);
  const row = labelledRow([
    ['Date and time', link],
    ['Action', entry.actionName],
    ['Resource name', entry.resourceName],
    ['Who', actorText(entry)],
  ]);
  row.tabIndex = $('rows').children.length === 0 ? 0 : -1;
  row.dataset.id = entry.id;
  if (entry.user) row.lastChild.title = entry.user.email;
  // Consecutive rows of one request (a bulk change) are drawn as a group.
  row.dataset.request = entry.requestId ?? '';
  const previous = $('rows').lastElementChild;
  if (entry.requestId && previous?.dataset.request === entry.requestId) {
    previous.classList.add('grouped');
    row.classList.add('grouped');
  }
  $('rows').append(row);
}

/** One Tab stop for the table: the arrow keys move between rows. */
function moveFocus(row, key) {
  const all = [...$('rows').children];
  const index = all.indexOf(row);
  const next = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: all.length - 1 }[key];
  const target = all[Math.max(0, Math.min(all.length - 1, next))];
  if (!target) return;
  for (const r of all) r.tabIndex = r === target ? 0 : -1;
  target.focus();
}

// ---- detail -----------------------------------------------------------------------------------

function valueCell(value, kind, field = '') {
  const cell = el('td', { className: value === undefined ? '' : kind });
  if (value === undefined) cell.textContent = '—';
  else if (value === '[REDACTED]') cell.append(el('span', { className: 'redacted', textContent: '[REDACTED] secret' }));
  else if (isReference(field, value)) cell.append(referenceNode(value));
  else cell.textContent = JSON.stringify(value);
  return cell;
}

// ---- references: a diff's modelId, sourceId and segmentIds[n] shown by name -----------------------

/** A top-level field named …Id or …Ids[n] holding a UUID refers to another resource of the workspace. */
const REFERENCE_FIELD = /^[a-z][A-Za-z0-9]*(Id|Ids\[\d+\]|Ids)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isReference = (field, value) => REFERENCE_FIELD.test(field) && typeof value === 'string' && UUID.test(value);
/** Deleted references cost one request each (their last name is in their newest entry): at most this many per entry. */
const DELETED_LOOKUPS = 10;

/** The id until its name arrives (`fillReferences`); the id stays readable on hover and to screen readers. */
function referenceNode(id) {
  const node = el('span', { className: 'ref', textContent: id });
  node.dataset.ref = id;
  return node;
}

/**
 * Names for every reference shown under `container`: the live ones in one request to the resources
 * list (by id), then each deleted one from its newest entry (at most DELETED_LOOKUPS a time; the rest
 * keep their ids). Answers are kept for the workspace, so reopening an entry costs nothing.
 */
async function fillReferences(container, isCurrent) {
  const ids = [...new Set([...container.querySelectorAll('[data-ref]')].map((node) => node.dataset.ref))];
  const unknown = ids.filter((id) => !state.names.has(id));
  if (unknown.length) {
    const live = lookUpLive(unknown);
    const gone = live.then((found) => (found ? unknown.filter((id) => !found.has(id)).slice(0, DELETED_LOOKUPS) : []));
    for (const id of unknown) {
      const name = live.then(async (found) => {
        if (found?.has(id)) return found.get(id);
        return (await gone).includes(id) ? lookUpDeleted(id) : undefined;
      });
      state.names.set(id, name);
    }
  }
  const names = new Map(await Promise.all(ids.map(async (id) => [id, await state.names.get(id)])));
  for (const [id, ref] of names) if (ref === undefined) state.names.delete(id); // not looked up: try again later
  if (!isCurrent()) return;
  for (const node of container.querySelectorAll('[data-ref]')) {
    const ref = names.get(node.dataset.ref);
    if (ref) node.replaceWith(namedReference(node.dataset.ref, ref));
  }
}

/** Live resources by id (one request per 200), or undefined when the list could not be read. */
async function lookUpLive(ids) {
  const found = new Map();
  for (let i = 0; i < ids.length; i += 200) {
    const query = new URLSearchParams({ id: ids.slice(i, i + 200).join(','), limit: '200' });
    const page = await api(wsPath(`/resources?${query}`)).catch(() => null);
    if (page?.status !== 200) return undefined;
    for (const r of page.body.items) found.set(r.id, { name: r.name, resourceType: r.resourceType, deleted: false });
  }
  return found;
}

/** A resource that is not live: the name in its newest entry (null when the log has none; undefined on failure). */
async function lookUpDeleted(id) {
  const page = await api(wsPath(`/audit-logs?resourceId=${id}&limit=1`)).catch(() => null);
  if (page?.status !== 200) return undefined;
  const newest = page.body.items[0];
  return newest ? { name: newest.resourceName, resourceType: newest.resourceType, deleted: true } : null;
}

/** A resolved reference: its name, linking to its history, with its type and id on hover and for screen readers. */
function namedReference(id, ref) {
  const link = el('a', {
    href: `${location.pathname}?workspace=${state.workspaceId}&resourceId=${id}`,
    className: 'ref',
    textContent: ref.name,
    title: `${capital(ref.resourceType)} ${id}${ref.deleted ? ', deleted' : ''}`,
  });
  link.setAttribute('aria-label', `${ref.name} (${ref.resourceType} ${id})`);
  link.addEventListener('click', (event) => {
    event.preventDefault();
    viewHistory(id, `${ref.resourceType} “${ref.name}”`);
  });
  return ref.deleted ? el('span', { className: 'ref' }, link, ' (deleted)') : link;
}

function definitionList(pairs) {
  return pairs.flatMap(([term, text]) => [el('dt', { textContent: term }), el('dd', { textContent: text })]);
}

async function openEntry(id) {
  let entry = state.entries.get(id);
  if (!entry) {
    const res = await api(wsPath(`/audit-logs/${encodeURIComponent(id)}`)).catch(() => null);
    if (!res) return;
    if (res.status !== 200) return setStatus(`Entry ${id}: ${messageOf(res.body)}`, true);
    entry = res.body;
    state.entries.set(entry.id, entry);
  }
  openDetail(entry);
}

/**
 * Changes as the detail shows them: the elements of a list of plain values (`regions[0]`, `regions[1]`)
 * become one row saying what was removed and what was added, instead of position by position
 * (GB → DE, DE → US reads as "removed GB, added US"). Values at unchanged positions are equal on both
 * sides, so comparing the changed positions' values is enough.
 */
function shownChanges(changes) {
  const scalar = (value) => value === undefined || value === null || typeof value !== 'object';
  const lists = new Map();
  const rows = [];
  for (const change of changes) {
    const match = /^(.*)\[(\d+)\]$/.exec(change.field);
    if (
      !match ||
      !scalar(change.before) ||
      !scalar(change.after) ||
      change.before === '[REDACTED]' ||
      change.after === '[REDACTED]'
    ) {
      rows.push(change);
      continue;
    }
    let list = lists.get(match[1]);
    if (!list) {
      list = { list: true, field: match[1], before: [], after: [] };
      lists.set(match[1], list);
      rows.push(list);
    }
    if ('before' in change) list.before.push(change.before);
    if ('after' in change) list.after.push(change.after);
  }
  const minus = (from, take) => {
    const rest = [...from];
    for (const value of take) {
      const at = rest.findIndex((v) => JSON.stringify(v) === JSON.stringify(value));
      if (at >= 0) rest.splice(at, 1);
    }
    return rest;
  };
  return rows.map((row) =>
    row.list ? { ...row, removed: minus(row.before, row.after), added: minus(row.after, row.before) } : row,
  );
}

/** "removed GB, DE" as nodes: plain values as text, references as their names. */
function listNodes(verb, values, field) {
  if (!values.length) return ['—'];
  const nodes = [verb ? `${verb} ` : ''];
  values.forEach((v, i) => {
    if (i > 0) nodes.push(', ');
    nodes.push(isReference(`${field}[${i}]`, v) ? referenceNode(v) : typeof v === 'string' ? v : JSON.stringify(v));
  });
  return nodes;
}

function openDetail(entry) {
  state.detail = entry;
  // Sources, models, segments and destinations: their references are named and they can be restored.
  const resource = LISTED_TYPES.includes(entry.resourceType);
  const refs = (field) => (resource ? field : '');
  $('detail-title').textContent = `${entry.actionName}: ${entry.resourceName}`;
  $('detail-meta').replaceChildren(
    ...definitionList([
      ['When', `${dateFormat.format(new Date(entry.occurredAt))} (UTC ${entry.occurredAt})`],
      ['Who', actorText(entry, true)],
      ['Request id', entry.requestId ?? '—'],
      ['Resource', `${entry.resourceType} “${entry.resourceName}” (${entry.resourceId})`],
    ]),
  );
  // A creation has only values after it, a deletion only values before it: one column, "Value".
  const only = entry.action === 'created' ? 'after' : entry.action === 'deleted' ? 'before' : undefined;
  $('diff-before').hidden = only === 'after';
  $('diff-after').hidden = only === 'before';
  $('diff-before').textContent = only ? 'Value' : 'Before';
  $('diff-after').textContent = only ? 'Value' : 'After';
  $('detail-changes').replaceChildren(
    ...shownChanges(entry.changes).map((change) =>
      change.list
        ? el(
            'tr',
            {},
            el('td', { textContent: change.field }),
            ...(only === 'after'
              ? [el('td', { className: 'after' }, ...listNodes('', change.added, refs(change.field)))]
              : only === 'before'
                ? [el('td', { className: 'before' }, ...listNodes('', change.removed, refs(change.field)))]
                : [
                    el('td', { className: 'before' }, ...listNodes('removed', change.removed, refs(change.field))),
                    el('td', { className: 'after' }, ...listNodes('added', change.added, refs(change.field))),
                  ]),
          )
        : el(
            'tr',
            {},
            el('td', { textContent: change.field }),
            ...(only === 'after' ? [] : [valueCell(change.before, 'before', refs(change.field))]),
            ...(only === 'before' ? [] : [valueCell(change.after, 'after', refs(change.field))]),
          ),
    ),
  );
  $('entry-link').href = entryHref(entry.id);
  $('restore-confirm').hidden = true;
  $('restore-result').replaceChildren();
  const creation =
    entry.action === 'created' ||
    (entry.action === 'restored' && entry.changes.some((c) => c.field === 'name' && !('before' in c)));
  const restorable = resource && !creation && ['updated', 'deleted', 'restored'].includes(entry.action);
  $('restore').hidden = !restorable;
  $('restore-note').hidden = restorable;
  $('restore-note').textContent = !resource
    ? `${typeLabel(entry.resourceType)} entries cannot be restored.`
    : creation
      ? 'A creation cannot be restored: deleting the resource is what undoes it.'
      : '';
  const query = new URLSearchParams(location.search);
  if (query.get('entry') !== entry.id) {
    query.set('entry', entry.id);
    history.replaceState(null, '', `${location.pathname}?${query}`);
  }
  if (!$('detail').open) $('detail').showModal();
  void loadOwners(entry);
  void fillReferences($('detail-changes'), () => state.detail === entry);
  void showRequestSize(entry);
}

/** How many entries the entry's request produced; a bulk request's entries are one click away. */
async function showRequestSize(entry) {
  const link = $('request-entries');
  link.hidden = true;
  delete link.dataset.count;
  if (!entry.requestId) return;
  if (!state.requestCounts.has(entry.requestId)) {
    const query = new URLSearchParams({ requestId: entry.requestId, limit: '200' });
    const counted = api(wsPath(`/audit-logs?${query}`))
      .then((page) => (page.status === 200 ? page.body.items.length : 0))
      .catch(() => 0);
    state.requestCounts.set(entry.requestId, counted);
  }
  const count = await state.requestCounts.get(entry.requestId);
  if (state.detail !== entry) return;
  link.dataset.count = String(count);
  if (count < 2) return;
  link.textContent = `${count === 200 ? '200 or more' : count} entries from this request`;
  link.href = `${location.pathname}?workspace=${state.workspaceId}&requestId=${encodeURIComponent(entry.requestId)}`;
  link.hidden = false;
}

/** The resource's creator and last editor, from its newest entry and the resources list. */
async function loadOwners(entry) {
  const owners = $('detail-owners');
  if (!LISTED_TYPES.includes(entry.resourceType)) return owners.replaceChildren();
  owners.replaceChildren(...definitionList([['Creator and last editor', 'Loading…']]));
  const newest = await api(wsPath(`/audit-logs?resourceId=${entry.resourceId}&limit=1`)).catch(() => null);
  if (state.detail !== entry || !newest) return;
  const latest = newest.body.items?.[0];
  if (!latest) return owners.replaceChildren();
  if (latest.action === 'deleted') {
    return owners.replaceChildren(...definitionList([['Now', `Deleted by ${actorText(latest)}`]]));
  }
  const query = new URLSearchParams({ resourceType: latest.resourceType, name: latest.resourceName, limit: '200' });
  const found = await api(wsPath(`/resources?${query}`)).catch(() => null);
  if (state.detail !== entry || !found) return;
  const resource = found.body.items?.find((r) => r.id === entry.resourceId);
  if (!resource) return owners.replaceChildren();
  owners.replaceChildren(
    ...definitionList([
      ['Created by', personText(resource.createdBy)],
      ['Last edited by', `${personText(resource.updatedBy)}, ${dateFormat.format(new Date(resource.updatedAt))}`],
    ]),
  );
}

function closeDetail() {
  const query = new URLSearchParams(location.search);
  if (query.has('entry')) {
    query.delete('entry');
    history.replaceState(null, '', `${location.pathname}?${query}`);
  }
}

/** Leaves the entry's detail: its address first, so that Back does not reopen it. */
function leaveDetail() {
  closeDetail();
  if ($('detail').open) $('detail').close();
}

function viewHistory(resourceId, label) {
  leaveDetail();
  state.resourceLabel = label;
  state.tab = 'log';
  show('log');
  applyFilters({ ...emptyFilters(), resourceId });
}

function viewRequest(requestId) {
  leaveDetail();
  state.tab = 'log';
  show('log');
  applyFilters({ ...emptyFilters(), requestId });
}

// ---- restore ------------------------------------------------------------------------------------

function confirmRestore() {
  const entry = state.detail;
  const deleted = entry.action === 'deleted';
  $('restore-summary').textContent = deleted
    ? `The ${entry.resourceType} “${entry.resourceName}” will be re-created with its id and these values.`
    : `These fields of the ${entry.resourceType} go back to their values before this change; other fields keep their current values.`;
  $('restore-changes').replaceChildren(
    ...entry.changes.map((change) =>
      el(
        'tr',
        {},
        el('td', { textContent: change.field }),
        valueCell(change.after, 'before', change.field),
        valueCell(change.before, 'after', change.field),
      ),
    ),
  );
  void fillReferences($('restore-changes'), () => state.detail === entry);
  $('restore-confirm').hidden = false;
  $('restore-go').focus();
}

async function runRestore() {
  const entry = state.detail;
  $('restore-go').disabled = true;
  const res = await api(wsPath(`/audit-logs/${entry.id}/restore`), { method: 'POST' }).catch(() => null);
  $('restore-go').disabled = false;
  if (!res) return;
  $('restore-confirm').hidden = true;
  const result = $('restore-result');
  if (res.status === 429) {
    const seconds = Number(res.retryAfter) || 60;
    return result.replaceChildren(
      el('p', { className: 'error', textContent: `Too many requests: try again in ${seconds} seconds.` }),
    );
  }
  if (res.status !== 200) {
    return result.replaceChildren(el('p', { className: 'error', textContent: `Not restored: ${messageOf(res.body)}` }));
  }
  const parts = [el('p', { className: 'ok', textContent: `Restored the ${entry.resourceType} “${res.body.name}”.` })];
  if (res.body.secretsNotRestored?.length) {
    parts.push(
      el('p', { textContent: 'These secrets were not restored (the log holds them only redacted); set them again:' }),
      el('ul', {}, ...res.body.secretsNotRestored.map((path) => el('li', { textContent: path }))),
    );
  }
  result.replaceChildren(...parts);
  void reload();
}

// ---- the Resources tab -----------------------------------------------------------------------

function resourceFiltersToForm(query) {
  setMulti($('r-type'), (query.get('rType') ?? '').split(','));
  setMulti($('r-created'), (query.get('rCreatedBy') ?? '').split(','));
  setMulti($('r-updated'), (query.get('rUpdatedBy') ?? '').split(','));
  $('r-name').value = query.get('rName') ?? '';
  $('r-others').checked = query.get('rOthers') === '1';
}

function resourceUrl() {
  const query = new URLSearchParams({ workspace: state.workspaceId, tab: 'resources' });
  if (multiValues($('r-type')).length) query.set('rType', multiValues($('r-type')).join(','));
  if ($('r-name').value.trim()) query.set('rName', $('r-name').value.trim());
  if (multiValues($('r-created')).length) query.set('rCreatedBy', multiValues($('r-created')).join(','));
  if (multiValues($('r-updated')).length) query.set('rUpdatedBy', multiValues($('r-updated')).join(','));
  if ($('r-others').checked) query.set('rOthers', '1');
  return query;
}

function resourceFiltersChanged() {
  for (const c of [$('r-type'), $('r-created'), $('r-updated')]) summarizeMulti(c);
  renderResourceChips();
  history.pushState(null, '', `${location.pathname}?${resourceUrl()}`);
  void loadResources();
}

function renderResourceChips() {
  const chips = [];
  const removing = (undo) => () => {
    undo();
    resourceFiltersChanged();
  };
  for (const [label, container] of [
    ['Type', $('r-type')],
    ['Creator', $('r-created')],
    ['Last editor', $('r-updated')],
  ]) {
    for (const value of multiValues(container)) {
      const name = optionLabel(container, value).replace(/ \(.*\)$/, '');
      const box = boxes(container).find((b) => b.value === value);
      chips.push([`${label}: ${name}`, removing(() => (box.checked = false))]);
    }
  }
  const name = $('r-name').value.trim();
  if (name) chips.push([`Name contains “${name}”`, removing(() => ($('r-name').value = ''))]);
  if ($('r-others').checked) {
    chips.push(['Edited by someone other than its creator', removing(() => ($('r-others').checked = false))]);
  }
  showChips($('r-chips'), chips);
  $('r-clear').hidden = chips.length === 0;
}

async function loadResources(more = false) {
  const seq = ++state.rSeq;
  if (!more) {
    state.rCursor = null;
    $('r-rows').replaceChildren();
  }
  const url = resourceUrl();
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [from, to] of [
    ['rType', 'resourceType'],
    ['rName', 'name'],
    ['rCreatedBy', 'createdBy'],
    ['rUpdatedBy', 'updatedBy'],
  ]) {
    if (url.get(from)) query.set(to, url.get(from));
  }
  if (url.get('rOthers')) query.set('editedByOthers', 'true');
  if (state.rCursor) query.set('cursor', state.rCursor);
  setLoading('resources', true);
  setStatus('Loading…', false, 'r-status');
  const page = await api(wsPath(`/resources?${query}`)).catch(() => null);
  if (!page || seq !== state.rSeq) return;
  setLoading('resources', false);
  if (page.status !== 200) return setStatus(messageOf(page.body), true, 'r-status');
  for (const resource of page.body.items) appendResource(resource);
  state.rCursor = page.body.nextCursor;
  $('r-more').hidden = !state.rCursor;
  const count = $('r-rows').children.length;
  setStatus(
    count > 0
      ? `${count} resource${count === 1 ? '' : 's'} shown.`
      : [...url.keys()].some((key) => /^r[A-Z]/.test(key))
        ? 'No resources match these filters.'
        : 'This workspace has no resources yet.',
    false,
    'r-status',
  );
}

function appendResource(resource) {
  const label = `${resource.resourceType} “${resource.name}”`;
  const link = el('a', {
    href: `${location.pathname}?workspace=${state.workspaceId}&resourceId=${resource.id}`,
    textContent: resource.name,
  });
  link.setAttribute('aria-label', `${resource.name}: view its history`);
  link.addEventListener('click', (event) => {
    event.preventDefault();
    viewHistory(resource.id, label);
  });
  const time = el('time', {
    dateTime: resource.updatedAt,
    textContent: dateFormat.format(new Date(resource.updatedAt)),
  });
  $('r-rows').append(
    labelledRow([
      ['Type', capital(resource.resourceType)],
      ['Name', link],
      ['Creator', personText(resource.createdBy)],
      ['Last editor', personText(resource.updatedBy)],
      ['Last change', time],
    ]),
  );
}

// ---- confirmation ------------------------------------------------------------------------------

/** A modal question with the safe answer focused; resolves true when confirmed. */
function confirmAction({ title, text, confirm }) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-go').textContent = confirm;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'yes'), { once: true }),
  );
}

// ---- members (admins) ---------------------------------------------------------------------------

async function loadMembers() {
  setLoading('members', true);
  const res = await api(wsPath('/members')).catch(() => null);
  if (!res) return;
  setLoading('members', false);
  if (res.status !== 200) return setStatus(messageOf(res.body), true, 'm-status');
  const members = res.body.items;
  $('m-rows').replaceChildren(...members.map(memberRow));
  const admins = members.filter((m) => m.role === 'admin').length;
  setStatus(
    `${members.length} member${members.length === 1 ? '' : 's'}, ${admins} admin${admins === 1 ? '' : 's'}.`,
    false,
    'm-status',
  );
}

function memberRow(member) {
  const you = member.userId === state.me.user.id;
  const role = el('select', {}, new Option('Member', 'member'), new Option('Admin', 'admin'));
  role.value = member.role;
  role.setAttribute('aria-label', `Role of ${member.name}`);
  role.addEventListener('change', () => void changeRole(member, role));
  const remove = el('button', { type: 'button', className: 'secondary small', textContent: 'Remove…' });
  remove.setAttribute('aria-label', `Remove ${member.name}…`);
  remove.addEventListener('click', () => void removeMember(member));
  const row = labelledRow([
    ['Name', you ? `${member.name} (you)` : member.name],
    ['Email', member.email],
    ['Role', role],
    ['Actions', remove],
  ]);
  row.dataset.user = member.userId;
  return row;
}

async function addMember() {
  $('m-error').textContent = '';
  const body = { email: $('m-email').value.trim(), name: $('m-name').value.trim(), role: $('m-role').value };
  const res = await api(wsPath('/members'), { method: 'POST', body }).catch(() => null);
  if (!res) return;
  if (res.status !== 201) {
    $('m-error').textContent = `${body.email} was not added: ${messageOf(res.body)}`;
    return;
  }
  $('add-member').reset();
  await loadMembers();
  setStatus(`Added ${body.email} as ${body.role === 'admin' ? 'an admin' : 'a member'}.`, false, 'm-status');
}

async function changeRole(member, select) {
  $('m-error').textContent = '';
  const role = select.value;
  const res = await api(wsPath(`/members/${member.userId}`), { method: 'PATCH', body: { role } }).catch(() => null);
  if (!res) return;
  if (res.status !== 200) {
    select.value = member.role;
    $('m-error').textContent = `${member.name} is still ${article(member.role)}: ${messageOf(res.body)}`;
    return;
  }
  if (member.userId === state.me.user.id) return reopen();
  await loadMembers();
  setStatus(`${member.name} is now ${article(role)}.`, false, 'm-status');
}

async function removeMember(member) {
  $('m-error').textContent = '';
  const confirmed = await confirmAction({
    title: `Remove ${member.name}?`,
    text: `${member.name} (${member.email}) loses access to ${state.workspace.name} at once. What they did stays in the audit log.`,
    confirm: 'Remove member',
  });
  if (!confirmed) return;
  const res = await api(wsPath(`/members/${member.userId}`), { method: 'DELETE' }).catch(() => null);
  if (!res) return;
  if (res.status !== 204) {
    $('m-error').textContent = `${member.name} was not removed: ${messageOf(res.body)}`;
    return;
  }
  if (member.userId === state.me.user.id) return reopen();
  await loadMembers();
  setStatus(`Removed ${member.name}.`, false, 'm-status');
  $('m-email').focus();
}

const article = (role) => (role === 'admin' ? 'an admin' : 'a member');

/** After changing one's own membership: read who one is again and show what is left. */
async function reopen() {
  history.replaceState(null, '', `${location.pathname}?workspace=${state.workspaceId}`);
  await signIn(state.token);
}

// ---- API tokens (everyone's own) ----------------------------------------------------------------

async function loadTokens() {
  setLoading('tokens', true);
  const res = await api('/me/tokens').catch(() => null);
  if (!res) return;
  setLoading('tokens', false);
  if (res.status !== 200) return setStatus(messageOf(res.body), true, 't-status');
  const tokens = res.body.items;
  $('t-rows').replaceChildren(...tokens.map(tokenRow));
  setStatus(
    tokens.length === 0 ? 'You have no API tokens.' : `${tokens.length} token${tokens.length === 1 ? '' : 's'}.`,
    false,
    't-status',
  );
}

function tokenRow(token) {
  const when = (iso) => (iso ? el('time', { dateTime: iso, textContent: dateFormat.format(new Date(iso)) }) : 'Never');
  const revoke = el('button', { type: 'button', className: 'secondary small', textContent: 'Revoke…' });
  revoke.setAttribute('aria-label', `Revoke ${token.label}…`);
  revoke.addEventListener('click', () => void revokeToken(token));
  const row = labelledRow([
    ['Label', token.label],
    ['Created', when(token.createdAt)],
    ['Last used', when(token.lastUsedAt)],
    ['Actions', revoke],
  ]);
  row.dataset.id = token.id;
  return row;
}

async function createToken() {
  $('t-error').textContent = '';
  const label = $('t-label').value.trim();
  const res = await api('/me/tokens', { method: 'POST', body: { label } }).catch(() => null);
  if (!res) return;
  if (res.status !== 201) {
    $('t-error').textContent = `No token created: ${messageOf(res.body)}`;
    return;
  }
  $('add-token').reset();
  $('new-token-label').textContent = res.body.label;
  $('new-token-value').textContent = res.body.token;
  $('copy-status').textContent = '';
  $('new-token').hidden = false;
  $('new-token').focus();
  await loadTokens();
}

/** The new token is shown until the user says it is copied or leaves the screen: never again. */
function forgetNewToken() {
  $('new-token').hidden = true;
  $('new-token-value').textContent = '';
}

async function copyToken() {
  try {
    await navigator.clipboard.writeText($('new-token-value').textContent);
    $('copy-status').textContent = 'Copied to the clipboard.';
  } catch {
    getSelection().selectAllChildren($('new-token-value'));
    $('copy-status').textContent =
      'The clipboard is not available here: the token is selected, copy it with Ctrl+C or ⌘C.';
  }
}

async function revokeToken(token) {
  $('t-error').textContent = '';
  const confirmed = await confirmAction({
    title: `Revoke “${token.label}”?`,
    text: 'Anything using this token stops working at once. If this page signed in with it, you are signed out.',
    confirm: 'Revoke token',
  });
  if (!confirmed) return;
  const res = await api(`/me/tokens/${token.id}`, { method: 'DELETE' }).catch(() => null);
  if (!res) return;
  if (res.status !== 204) {
    $('t-error').textContent = `“${token.label}” was not revoked: ${messageOf(res.body)}`;
    return;
  }
  await loadTokens();
  setStatus(`Revoked “${token.label}”.`, false, 't-status');
  $('t-label').focus();
}

// ---- export -----------------------------------------------------------------------------------

/**
 * The server names the file after the workspace and the range in UTC days
 * (`acme-audit-log-2026-11-01-to-2026-11-27.csv`); the page keeps its workspace part and says the
 * range as the user chose it: "last-7-days", or the days they picked in their own timezone.
 */
function downloadName(disposition, format) {
  const served = /filename="([^"]+)"/.exec(disposition ?? '')?.[1] ?? `audit-log-all-time.${format}`;
  const f = state.filters;
  let range = '';
  if (RANGES[f.range]) range = RANGES[f.range][0].toLowerCase().replace(/ /g, '-');
  else if (f.range === 'custom' && (f.fromDay || f.toDay)) {
    range = f.fromDay && f.toDay ? `${f.fromDay}-to-${f.toDay}` : f.fromDay ? `from-${f.fromDay}` : `until-${f.toDay}`;
  }
  return range ? served.replace(/-audit-log-.*(\.[a-z]+)$/, `-audit-log-${range}$1`) : served;
}

async function exportLog(format) {
  $('export-menu').open = false;
  const query = apiQuery(state.filters);
  if (!query) return setStatus('Correct the dates before exporting.', true);
  query.set('format', format);
  setStatus('Preparing the export…');
  const res = await api(wsPath(`/audit-logs/export?${query}`), { raw: true });
  if (res.status === 429 || res.status === 503) {
    setStatus('');
    const body = await res.json().catch(() => ({}));
    return showRetry({ status: res.status, body, retryAfter: res.headers.get('Retry-After') }, () => exportLog(format));
  }
  if (!res.ok) return setStatus(messageOf(await res.json().catch(() => ({}))), true);
  const name = downloadName(res.headers.get('Content-Disposition'), format);
  const link = el('a', { href: URL.createObjectURL(await res.blob()), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setStatus(`Exported ${name}.`);
}

// ---- wiring -------------------------------------------------------------------------------------

state.filters = emptyFilters();
state.choices = { resourceTypes: LISTED_TYPES, actions: [] };
let nameTimer;
let rNameTimer;
$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void signIn($('token').value.trim());
});
$('sign-out').addEventListener('click', () => signOut());
$('workspace').addEventListener('change', (event) => void openWorkspace(event.target.value, { keepFilters: false }));
$('filters').addEventListener('change', (event) => {
  if (event.target.id === 'f-name' || event.target.type === 'search') return;
  filtersChanged();
});
$('f-name').addEventListener('input', () => {
  clearTimeout(nameTimer);
  nameTimer = setTimeout(filtersChanged, TYPING_DELAY);
});
$('filters').addEventListener('submit', (event) => event.preventDefault());
$('clear').addEventListener('click', () => {
  state.resourceLabel = '';
  applyFilters(emptyFilters());
});
$('more').addEventListener('click', () => void loadPage());
$('retry').addEventListener('click', () => {
  $('retry-box').hidden = true;
  void state.retry?.();
});
for (const button of $('export-menu').querySelectorAll('button')) {
  button.addEventListener('click', () => void exportLog(button.dataset.format));
}
for (const [toggle, form] of [
  ['toggle-filters', 'filters'],
  ['toggle-r-filters', 'r-filters'],
]) {
  $(toggle).addEventListener('click', () => {
    const open = $(toggle).getAttribute('aria-expanded') !== 'true';
    $(toggle).setAttribute('aria-expanded', String(open));
    $(form).classList.toggle('open', open);
  });
}
$('rows').addEventListener('click', (event) => {
  const row = event.target.closest('tr');
  if (!row) return;
  event.preventDefault();
  for (const r of $('rows').children) r.tabIndex = r === row ? 0 : -1;
  void openEntry(row.dataset.id);
});
$('rows').addEventListener('keydown', (event) => {
  const row = event.target.closest('tr');
  if (!row) return;
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    void openEntry(row.dataset.id);
  } else if (['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(event.key)) {
    event.preventDefault();
    moveFocus(row, event.key);
  }
});
$('detail').addEventListener('close', closeDetail);
$('history').addEventListener('click', () => {
  const entry = state.detail;
  viewHistory(entry.resourceId, `${entry.resourceType} “${entry.resourceName}”`);
});
$('request-entries').addEventListener('click', (event) => {
  event.preventDefault();
  viewRequest(state.detail.requestId);
});
$('restore').addEventListener('click', confirmRestore);
$('restore-cancel').addEventListener('click', () => {
  $('restore-confirm').hidden = true;
  $('restore').focus();
});
$('restore-go').addEventListener('click', () => void runRestore());
$('tabs').addEventListener('click', (event) => {
  const link = event.target.closest('a');
  if (!link) return;
  event.preventDefault();
  const tab = link.dataset.tab;
  const query =
    tab === 'resources'
      ? resourceUrl()
      : tab === 'log'
        ? urlQuery(state.filters ?? emptyFilters())
        : new URLSearchParams({ workspace: state.workspaceId, tab });
  history.pushState(null, '', `${location.pathname}?${query}`);
  void route();
});
$('r-filters').addEventListener('change', (event) => {
  if (event.target.type === 'search') return;
  resourceFiltersChanged();
});
$('r-filters').addEventListener('submit', (event) => event.preventDefault());
$('r-name').addEventListener('input', () => {
  clearTimeout(rNameTimer);
  rNameTimer = setTimeout(resourceFiltersChanged, TYPING_DELAY);
});
$('r-more').addEventListener('click', () => void loadResources(true));
$('add-member').addEventListener('submit', (event) => {
  event.preventDefault();
  void addMember();
});
$('add-token').addEventListener('submit', (event) => {
  event.preventDefault();
  void createToken();
});
$('copy-token').addEventListener('click', () => void copyToken());
$('new-token-done').addEventListener('click', () => {
  forgetNewToken();
  $('t-label').focus();
});
$('confirm-go').addEventListener('click', () => $('confirm').close('yes'));
$('confirm-cancel').addEventListener('click', () => $('confirm').close('no'));
$('r-clear').addEventListener('click', () => {
  resourceFiltersToForm(new URLSearchParams());
  resourceFiltersChanged();
});
window.addEventListener('popstate', () => {
  if (state.workspaceId && state.token) void route();
});

const saved = localStorage.getItem(TOKEN_KEY);
if (saved) void signIn(saved);
else signOut();
