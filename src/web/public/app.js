// The Audit Logs page: plain browser JavaScript, no build step, every asset served by the app.
const TOKEN_KEY = 'auditLog.token';
const PAGE_SIZE = 50;
const $ = (id) => document.getElementById(id);

const state = { token: null, me: null, workspaceId: null, cursor: null, seq: 0, entries: new Map() };

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
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

function show(section) {
  for (const id of ['sign-in', 'log', 'denied']) $(id).hidden = id !== section;
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

async function api(path, { raw = false } = {}) {
  const res = await fetch(`/api${path}`, { headers: { Authorization: `Bearer ${state.token}` } });
  if (res.status === 401) {
    signOut('Your token is unknown or was revoked. Paste a valid one.');
    throw new Error('unauthorized');
  }
  if (raw) return res;
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

function messageOf(body) {
  const message = body && body.message;
  return Array.isArray(message) ? message.join('; ') : message || 'Something went wrong.';
}

// ---- sign in / out -------------------------------------------------------------------------

function signOut(reason = '') {
  localStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { token: null, me: null, workspaceId: null });
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
  if (me.status !== 200) return signOut(messageOf(me.body));
  localStorage.setItem(TOKEN_KEY, token);
  state.me = me.body;
  $('who').textContent = `${me.body.user.name} · ${me.body.user.email}`;
  $('sign-out').hidden = false;
  const workspaces = me.body.workspaces;
  if (workspaces.length === 0) {
    $('denied-text').textContent = 'You are not a member of any workspace yet.';
    return show('denied');
  }
  const picker = $('workspace');
  picker.replaceChildren(...workspaces.map((w) => new Option(`${w.name} (${w.role})`, w.id)));
  $('workspace-picker').hidden = workspaces.length < 2;
  const wanted = new URLSearchParams(location.search).get('workspace');
  const chosen = workspaces.find((w) => w.id === wanted) ?? workspaces[0];
  picker.value = chosen.id;
  await openWorkspace(chosen.id, { keepFilters: chosen.id === wanted });
}

// ---- filters and the URL --------------------------------------------------------------------

const selected = (select) => [...select.selectedOptions].map((o) => o.value);

/** datetime-local values are local wall-clock times; the API takes instants. */
function toInstant(local) {
  return local ? new Date(local).toISOString() : '';
}

function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function currentFilters() {
  return {
    userId: selected($('f-user')).join(','),
    resourceType: selected($('f-type')).join(','),
    resourceName: $('f-name').value.trim(),
    from: toInstant($('f-from').value),
    to: toInstant($('f-to').value),
  };
}

function filterQuery() {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(currentFilters())) if (value) query.set(key, value);
  return query;
}

function writeUrl() {
  const query = filterQuery();
  query.set('workspace', state.workspaceId);
  history.replaceState(null, '', `${location.pathname}?${query.toString()}`);
}

function readUrl() {
  const query = new URLSearchParams(location.search);
  const pick = (select, values) => {
    for (const option of select.options) option.selected = values.includes(option.value);
  };
  pick($('f-user'), (query.get('userId') ?? '').split(','));
  pick($('f-type'), (query.get('resourceType') ?? '').split(','));
  $('f-name').value = query.get('resourceName') ?? '';
  $('f-from').value = toLocalInput(query.get('from'));
  $('f-to').value = toLocalInput(query.get('to'));
}

function clearFilters() {
  $('filters').reset();
  for (const option of [...$('f-user').options, ...$('f-type').options]) option.selected = false;
  reload();
}

// ---- the table ------------------------------------------------------------------------------

async function openWorkspace(workspaceId, { keepFilters }) {
  state.workspaceId = workspaceId;
  const workspace = state.me.workspaces.find((w) => w.id === workspaceId);
  if (workspace.role !== 'admin') {
    $('denied-text').textContent = `Your role in ${workspace.name} is member. Ask a workspace admin for access.`;
    writeUrlWorkspaceOnly();
    return show('denied');
  }
  show('log');
  const choices = await api(`/workspaces/${workspaceId}/audit-logs/filters`);
  if (choices.status === 403) return show('denied');
  $('f-user').replaceChildren(...(choices.body.users ?? []).map((u) => new Option(`${u.name} (${u.email})`, u.id)));
  if (keepFilters) readUrl();
  else $('filters').reset();
  $('zone').textContent = `Times are shown in your timezone, ${timeZone}.`;
  await reload();
}

function writeUrlWorkspaceOnly() {
  history.replaceState(null, '', `${location.pathname}?workspace=${state.workspaceId}`);
}

async function reload() {
  state.cursor = null;
  state.entries.clear();
  $('rows').replaceChildren();
  writeUrl();
  await loadPage();
}

/** `data-state` on the log section tells tests and assistive tech when a page has arrived. */
function setLoading(loading) {
  $('log').dataset.state = loading ? 'loading' : 'ready';
  $('log').setAttribute('aria-busy', String(loading));
}

async function loadPage() {
  const seq = ++state.seq;
  setLoading(true);
  setStatus('Loading…');
  $('more').disabled = true;
  const query = filterQuery();
  query.set('limit', String(PAGE_SIZE));
  if (state.cursor) query.set('cursor', state.cursor);
  let page;
  try {
    page = await api(`/workspaces/${state.workspaceId}/audit-logs?${query.toString()}`);
  } catch {
    return;
  }
  if (seq !== state.seq) return; // a newer request superseded this one
  setLoading(false);
  $('more').disabled = false;
  if (page.status === 403) return show('denied');
  if (page.status !== 200) {
    $('more').hidden = true;
    return setStatus(messageOf(page.body), true);
  }
  for (const entry of page.body.items) appendRow(entry);
  state.cursor = page.body.nextCursor;
  $('more').hidden = !state.cursor;
  const count = $('rows').children.length;
  setStatus(
    count === 0
      ? 'No entries match these filters.'
      : `${count} entr${count === 1 ? 'y' : 'ies'} shown${state.cursor ? '' : ' (all)'}.`,
  );
}

function appendRow(entry) {
  state.entries.set(entry.id, entry);
  const row = document.createElement('tr');
  row.tabIndex = 0;
  row.dataset.id = entry.id;
  const time = document.createElement('time');
  time.dateTime = entry.occurredAt;
  time.textContent = dateFormat.format(new Date(entry.occurredAt));
  const cells = [time, entry.actionName, entry.resourceName, entry.user ? entry.user.name : 'System'];
  for (const content of cells) {
    const cell = document.createElement('td');
    cell.append(content);
    row.append(cell);
  }
  if (entry.user) row.lastChild.title = entry.user.email;
  $('rows').append(row);
}

// ---- detail ---------------------------------------------------------------------------------

function valueCell(value, kind) {
  const cell = document.createElement('td');
  cell.className = kind;
  if (value === undefined) cell.textContent = '—';
  else if (value === '[REDACTED]') {
    cell.innerHTML = '<span class="redacted">[REDACTED] secret</span>';
  } else cell.textContent = JSON.stringify(value);
  return cell;
}

function openDetail(id) {
  const entry = state.entries.get(id);
  if (!entry) return;
  $('detail-title').textContent = `${entry.actionName}: ${entry.resourceName}`;
  const meta = [
    ['When', `${dateFormat.format(new Date(entry.occurredAt))} (${entry.occurredAt})`],
    ['Who', entry.user ? `${entry.user.name} <${entry.user.email}>` : 'System'],
    ['Request id', entry.requestId ?? '—'],
    ['Resource', `${entry.resourceType} ${entry.resourceId}`],
  ];
  $('detail-meta').replaceChildren(
    ...meta.flatMap(([term, text]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = text;
      return [dt, dd];
    }),
  );
  $('detail-changes').replaceChildren(
    ...entry.changes.map((change) => {
      const row = document.createElement('tr');
      const field = document.createElement('td');
      field.textContent = change.field;
      row.append(field, valueCell(change.before, 'before'), valueCell(change.after, 'after'));
      return row;
    }),
  );
  $('detail').showModal();
}

// ---- export ---------------------------------------------------------------------------------

async function exportCsv() {
  const query = filterQuery();
  query.set('format', 'csv');
  setStatus('Preparing the export…');
  const res = await api(`/workspaces/${state.workspaceId}/audit-logs/export?${query.toString()}`, { raw: true });
  if (!res.ok) return setStatus(messageOf(await res.json().catch(() => ({}))), true);
  const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') ?? '')?.[1] ?? 'audit-log.csv';
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await res.blob());
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setStatus(`Exported ${name}.`);
}

// ---- wiring ---------------------------------------------------------------------------------

let nameTimer;
$('sign-in-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void signIn($('token').value.trim());
});
$('sign-out').addEventListener('click', () => signOut());
$('workspace').addEventListener('change', (event) => void openWorkspace(event.target.value, { keepFilters: false }));
$('f-user').addEventListener('change', () => void reload());
$('f-type').addEventListener('change', () => void reload());
$('f-from').addEventListener('change', () => void reload());
$('f-to').addEventListener('change', () => void reload());
$('f-name').addEventListener('input', () => {
  clearTimeout(nameTimer);
  nameTimer = setTimeout(() => void reload(), 300);
});
$('filters').addEventListener('submit', (event) => event.preventDefault());
$('clear').addEventListener('click', clearFilters);
$('more').addEventListener('click', () => void loadPage());
$('export').addEventListener('click', () => void exportCsv());
$('rows').addEventListener('click', (event) => {
  const row = event.target.closest('tr');
  if (row) openDetail(row.dataset.id);
});
$('rows').addEventListener('keydown', (event) => {
  const row = event.target.closest('tr');
  if (row && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();
    openDetail(row.dataset.id);
  }
});

const saved = localStorage.getItem(TOKEN_KEY);
if (saved) void signIn(saved);
else signOut();
