// @ts-check
// The live page: search and pick topics, watch events arrive, pause, filter,
// and see each topic's rate over the last minute. One EventSource carries every
// selected topic (browsers allow 6 HTTP/1.1 connections per origin), and
// reconnects by itself with Last-Event-ID, so a dropped connection or a server
// restart loses nothing and repeats nothing.

/** Most rows kept on the page, and most events held while paused; older ones are dropped. */
const MAX_ROWS = 500;
/** Seconds of history in the rate chart. */
const CHART_SECONDS = 60;
/** The chart's drawing box (the SVG's viewBox); it stretches to the page's width. */
const CHART_WIDTH = 600;
const CHART_HEIGHT = 120;
/** One colour per topic, in the order topics first send an event. */
const CHART_COLORS = ['#2f6fde', '#d03a3a', '#1f9d55', '#c77c02', '#8e44ad', '#16a2b8', '#6a7285', '#e0559b'];
const SVG_NS = 'http://www.w3.org/2000/svg';
/** Most rows added per animation frame, so a burst never freezes the page. */
const ROWS_PER_FRAME = 200;
/** Window of the rate display. */
const RATE_WINDOW_MS = 2000;

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return /** @type {T} */ (el);
}

const ui = {
  status: byId('status'),
  form: /** @type {HTMLFormElement} */ (byId('controls')),
  topics: byId('topics'),
  topicSearch: /** @type {HTMLInputElement} */ (byId('topic-search')),
  topicCount: byId('topic-count'),
  pauseCap: byId('pause-cap'),
  dropped: byId('dropped'),
  droppedCount: byId('dropped-count'),
  chart: byId('chart'),
  chartSvg: /** @type {SVGSVGElement} */ (/** @type {unknown} */ (byId('rate-chart'))),
  legend: byId('chart-legend'),
  refresh: /** @type {HTMLButtonElement} */ (byId('refresh')),
  since: /** @type {HTMLSelectElement} */ (byId('since')),
  connect: /** @type {HTMLButtonElement} */ (byId('connect')),
  disconnect: /** @type {HTMLButtonElement} */ (byId('disconnect')),
  pause: /** @type {HTMLButtonElement} */ (byId('pause')),
  filter: /** @type {HTMLInputElement} */ (byId('filter')),
  rate: byId('rate'),
  total: byId('total'),
  shown: byId('shown'),
  waiting: byId('waiting'),
  waitingCount: byId('waiting-count'),
  notice: byId('notice'),
  events: /** @type {HTMLOListElement} */ (byId('events')),
};

/** @typedef {{ topic: string, partition: number, offset: number, timestamp: number | undefined, json: string, message: Record<string, unknown> }} Received */

const state = {
  /** @type {EventSource | undefined} */
  source: undefined,
  paused: false,
  total: 0,
  /** Times the stream was resumed after a dropped connection. */
  resumes: 0,
  dropped: false,
  /** Events received and not yet drawn (waiting for a frame, or for "Resume"). @type {Received[]} */
  queue: [],
  frameRequested: false,
  /** [time, total] samples for the rate. @type {[number, number][]} */
  samples: [],
  filter: '',
  /** Events pushed out of the queue while paused (the queue holds MAX_ROWS). */
  droppedWhilePaused: 0,
  /** Per topic, events received in each of the last CHART_SECONDS seconds (oldest first). @type {Map<string, number[]>} */
  perSecond: new Map(),
  /** The second (since the epoch) of the last bucket of `perSecond`. */
  chartSecond: Math.floor(Date.now() / 1000),
};

// ---- status and notices ----

/**
 * @param {'idle' | 'connecting' | 'live' | 'reconnecting' | 'closed'} kind
 * @param {string} text
 */
function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

/**
 * @param {string} text
 * @param {'info' | 'error'} [kind]
 */
function showNotice(text, kind = 'info') {
  ui.notice.textContent = text;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
}

// ---- topics ----

/** The topics named in the page's `?topics=` (as links and bookmarks carry them). */
function topicsInUrl() {
  return (new URLSearchParams(location.search).get('topics') ?? '').split(',').filter(Boolean);
}

/**
 * Lists the server's topics, the chosen ones first (so a choice never hides
 * below the fold of a long list). Resolves with the names listed, or
 * undefined when the list could not be loaded.
 * @returns {Promise<Set<string> | undefined>}
 */
async function loadTopics() {
  ui.topics.textContent = 'loading…';
  const wanted = new Set(topicsInUrl());
  for (const box of selectedBoxes()) wanted.add(box.value);
  try {
    const res = await fetch('v2/topics', { headers: { Accept: 'application/json' } });
    const body = await res.json();
    if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
    /** @type {{ name: string, partitions: number }[]} */
    const topics = body.topics;
    ui.topics.replaceChildren();
    if (topics.length === 0) ui.topics.textContent = 'No topics yet: produce to one and reload.';
    const ordered = [...topics.filter((t) => wanted.has(t.name)), ...topics.filter((t) => !wanted.has(t.name))];
    for (const t of ordered) {
      const label = document.createElement('label');
      label.dataset.topic = t.name.toLowerCase();
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.name = 'topic';
      box.value = t.name;
      box.checked = wanted.has(t.name);
      const count = document.createElement('small');
      count.textContent = `${t.partitions}p`;
      label.append(box, ` ${t.name} `, count);
      ui.topics.append(label);
    }
    searchTopics();
    return new Set(topics.map((t) => t.name));
  } catch (err) {
    ui.topics.textContent = `Could not list topics: ${err instanceof Error ? err.message : String(err)}`;
    ui.topicCount.textContent = '';
    return undefined;
  }
}

/** Shows the topics whose name contains the search text; chosen topics always stay in view. */
function searchTopics() {
  const query = ui.topicSearch.value.trim().toLowerCase();
  const labels = Array.from(ui.topics.querySelectorAll('label'), (el) => /** @type {HTMLLabelElement} */ (el));
  let shown = 0;
  for (const label of labels) {
    const box = label.querySelector('input');
    label.hidden = query !== '' && !box?.checked && !(label.dataset.topic ?? '').includes(query);
    if (!label.hidden) shown++;
  }
  ui.topicCount.textContent =
    query === '' ? `${labels.length} topic${labels.length === 1 ? '' : 's'}` : `${shown} of ${labels.length} shown`;
}

/** @returns {HTMLInputElement[]} */
function selectedBoxes() {
  return Array.from(
    ui.topics.querySelectorAll('input[name="topic"]:checked'),
    (el) => /** @type {HTMLInputElement} */ (el),
  );
}

// ---- the stream ----

function connect() {
  const topics = selectedBoxes().map((b) => b.value);
  if (topics.length === 0) {
    showNotice('Pick at least one topic.', 'error');
    return;
  }
  disconnect();
  hideNotice();
  clearEvents();
  const params = new URLSearchParams();
  if (ui.since.value !== '') params.set('since', String(Date.now() - Number(ui.since.value)));
  const query = params.size > 0 ? `?${params}` : '';
  const url = `v2/stream/${topics.map(encodeURIComponent).join(',')}${query}`;
  history.replaceState(null, '', `?topics=${topics.map(encodeURIComponent).join(',')}`);

  const source = new EventSource(url);
  state.source = source;
  // Every chosen topic gets its line at once, flat until it sends something.
  for (const topic of topics) state.perSecond.set(topic, new Array(CHART_SECONDS).fill(0));
  drawChart();
  state.resumes = 0;
  state.dropped = false;
  setStatus('connecting', 'connecting…');
  ui.disconnect.disabled = false;
  ui.pause.disabled = false;

  source.addEventListener('open', () => {
    if (state.dropped) state.resumes++;
    state.dropped = false;
    setStatus(
      'live',
      state.resumes > 0 ? `live · resumed ${state.resumes === 1 ? 'once' : `${state.resumes} times`}` : 'live',
    );
  });
  source.addEventListener('message', (e) => receive(e.data));
  // `error` is both the connection's error (a plain Event) and the server's
  // `event: error` frame (a MessageEvent with the reason as JSON).
  source.addEventListener('error', (e) => {
    if (e instanceof MessageEvent && typeof e.data === 'string') {
      showNotice(`The server ended the stream: ${describeServerError(e.data)}`, 'error');
      return;
    }
    if (source.readyState === EventSource.CONNECTING) {
      state.dropped = true;
      setStatus('reconnecting', 'reconnecting… (will resume where it stopped)');
    } else if (source.readyState === EventSource.CLOSED && state.source === source) {
      setStatus('closed', 'closed');
      void explainRefusal(url);
      ui.pause.disabled = true;
    }
  });
  source.addEventListener('lost', (e) => {
    const range = JSON.parse(/** @type {MessageEvent} */ (e).data);
    showNotice(
      `Some messages of ${range.topic}/${range.partition} were deleted by retention before they could be read; ` +
        'the stream continues from the oldest one left.',
    );
  });
}

function disconnect() {
  state.source?.close();
  state.source = undefined;
  setStatus('idle', 'not connected');
  ui.disconnect.disabled = true;
  ui.pause.disabled = true;
}

/**
 * EventSource does not say why a server refused it (404, 429…): ask once with
 * fetch for the JSON body, then drop the connection if it was accepted after all.
 * @param {string} url
 */
async function explainRefusal(url) {
  const abort = new AbortController();
  try {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, signal: abort.signal });
    if (res.ok) showNotice('The stream closed; press Connect to open it again.', 'error');
    else showNotice(`The server refused the stream (${res.status}): ${describeServerError(await res.text())}`, 'error');
  } catch {
    showNotice('The stream closed and the server does not answer.', 'error');
  } finally {
    abort.abort();
  }
}

/** @param {string} text */
function describeServerError(text) {
  try {
    const body = JSON.parse(text);
    return body.message ?? text;
  } catch {
    return text;
  }
}

/** @param {string} data */
function receive(data) {
  /** @type {Record<string, unknown>} */
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    message = { value: data };
  }
  const meta = /** @type {{ topic?: string, partition?: number, offset?: number, timestamp?: number }} */ (
    message._kafka ?? {}
  );
  state.total++;
  countForChart(meta.topic ?? '?');
  state.queue.push({
    topic: meta.topic ?? '?',
    partition: meta.partition ?? -1,
    offset: meta.offset ?? -1,
    timestamp: meta.timestamp,
    json: data,
    message,
  });
  // Older queued events would be pushed off the page anyway; while paused, say how many went.
  if (state.queue.length > MAX_ROWS) {
    const over = state.queue.length - MAX_ROWS;
    state.queue.splice(0, over);
    if (state.paused) state.droppedWhilePaused += over;
  }
  if (!state.paused) requestDraw();
}

// ---- drawing ----

function requestDraw() {
  if (state.frameRequested) return;
  state.frameRequested = true;
  requestAnimationFrame(draw);
}

function draw() {
  state.frameRequested = false;
  if (state.paused) return;
  const batch = state.queue.splice(0, ROWS_PER_FRAME);
  if (batch.length > 0) {
    const fragment = document.createDocumentFragment();
    // Newest first.
    for (let i = batch.length - 1; i >= 0; i--) fragment.append(row(/** @type {Received} */ (batch[i])));
    ui.events.prepend(fragment);
    while (ui.events.childElementCount > MAX_ROWS) ui.events.lastElementChild?.remove();
  }
  updateCounts();
  if (state.queue.length > 0) requestDraw();
}

/**
 * @param {Received} e
 * @returns {HTMLLIElement}
 */
function row(e) {
  const li = document.createElement('li');
  li.className = 'event';
  li.dataset.topic = e.topic;
  li.dataset.partition = String(e.partition);
  li.dataset.offset = String(e.offset);
  li.dataset.search = e.json.toLowerCase();
  li.hidden = !matches(li);

  const details = document.createElement('details');
  const summary = document.createElement('summary');
  const time = document.createElement('time');
  const when = e.timestamp === undefined ? new Date() : new Date(e.timestamp);
  time.dateTime = when.toISOString();
  time.textContent = when.toLocaleTimeString();
  const where = document.createElement('span');
  where.className = 'where';
  where.textContent = `${e.topic}/${e.partition}@${e.offset}`;
  const text = document.createElement('span');
  text.className = 'text';
  summarize(e.message, text);
  summary.append(time, where, text);
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(e.message, null, 2);
  details.append(summary, pre);
  li.append(details);
  return li;
}

/**
 * A one-line summary: wiki edits (as the demo produces, and as Wikimedia's
 * recentchange events look) get a readable line, anything else its JSON.
 * @param {Record<string, unknown>} m
 * @param {HTMLElement} into
 */
function summarize(m, into) {
  if (typeof m.title === 'string' && (typeof m.wiki === 'string' || typeof m.server_name === 'string')) {
    const type = document.createElement('span');
    type.className = `type type-${String(m.type ?? 'other')}`;
    type.textContent = String(m.type ?? '?');
    const length = /** @type {{ old?: number, new?: number } | undefined} */ (m.length);
    const delta = length && typeof length.new === 'number' ? length.new - (length.old ?? 0) : undefined;
    const bytes = document.createElement('span');
    bytes.className = delta === undefined ? 'bytes' : delta >= 0 ? 'bytes plus' : 'bytes minus';
    bytes.textContent = delta === undefined ? '' : `${delta >= 0 ? '+' : ''}${delta}`;
    const action = typeof m.log_action_comment === 'string' ? ` (${m.log_action_comment})` : '';
    into.append(type, ` ${m.server_name ?? m.wiki}: ${m.title} — ${m.user ?? 'anonymous'}${action} `, bytes);
    return;
  }
  const { _kafka, ...rest } = m;
  const json = JSON.stringify(rest);
  into.textContent = json.length > 240 ? `${json.slice(0, 239)}…` : json;
}

/** @returns {HTMLElement[]} */
function rows() {
  return Array.from(ui.events.children, (el) => /** @type {HTMLElement} */ (el));
}

/** @param {HTMLElement} li */
function matches(li) {
  return state.filter === '' || (li.dataset.search ?? '').includes(state.filter);
}

function applyFilter() {
  state.filter = ui.filter.value.trim().toLowerCase();
  for (const li of rows()) li.hidden = !matches(li);
  updateCounts();
}

function clearEvents() {
  ui.events.replaceChildren();
  state.queue = [];
  state.total = 0;
  state.samples = [];
  state.perSecond.clear();
  ui.legend.replaceChildren();
  ui.chartSvg.replaceChildren();
  setPaused(false);
  updateCounts();
}

function updateCounts() {
  ui.total.textContent = String(state.total);
  let shown = 0;
  for (const li of rows()) if (!li.hidden) shown++;
  ui.shown.textContent = String(shown);
  ui.waiting.hidden = !state.paused;
  ui.waitingCount.textContent = String(state.queue.length);
  ui.dropped.hidden = state.droppedWhilePaused === 0;
  ui.droppedCount.textContent = String(state.droppedWhilePaused);
}

/** @param {boolean} paused */
function setPaused(paused) {
  state.paused = paused;
  ui.pause.textContent = paused ? 'Resume' : 'Pause';
  ui.pause.setAttribute('aria-pressed', String(paused));
  if (paused) state.droppedWhilePaused = 0;
  if (!paused) requestDraw();
  updateCounts();
}

// The rate keeps running while paused: pausing stops drawing, not receiving.
setInterval(() => {
  const now = performance.now();
  state.samples.push([now, state.total]);
  while (state.samples.length > 1 && now - (state.samples[0]?.[0] ?? now) > RATE_WINDOW_MS) state.samples.shift();
  const [t0, n0] = state.samples[0] ?? [now, state.total];
  const rate = now > t0 ? ((state.total - n0) * 1000) / (now - t0) : 0;
  ui.rate.textContent = rate >= 10 ? rate.toFixed(0) : rate.toFixed(1);
  if (state.paused) updateCounts();
}, 500);

// ---- the rate chart: events per second per topic, drawn as inline SVG ----

/** Moves every topic's window forward to the current second, with zeros for quiet seconds. */
function advanceChart() {
  const now = Math.floor(Date.now() / 1000);
  const steps = Math.min(now - state.chartSecond, CHART_SECONDS);
  if (steps <= 0) return;
  state.chartSecond = now;
  for (const counts of state.perSecond.values()) {
    counts.push(...new Array(steps).fill(0));
    counts.splice(0, counts.length - CHART_SECONDS);
  }
}

/** @param {string} topic */
function countForChart(topic) {
  advanceChart();
  let counts = state.perSecond.get(topic);
  if (!counts) {
    counts = new Array(CHART_SECONDS).fill(0);
    state.perSecond.set(topic, counts);
  }
  counts[counts.length - 1] = (counts.at(-1) ?? 0) + 1;
}

function drawChart() {
  advanceChart();
  ui.chart.hidden = state.source === undefined && state.perSecond.size === 0;
  let peak = 1;
  for (const counts of state.perSecond.values()) peak = Math.max(peak, ...counts);
  const step = CHART_WIDTH / (CHART_SECONDS - 1);
  const lines = [];
  const legend = [];
  let index = 0;
  for (const [topic, counts] of state.perSecond) {
    const color = CHART_COLORS[index++ % CHART_COLORS.length] ?? '#000';
    const line = document.createElementNS(SVG_NS, 'polyline');
    line.setAttribute(
      'points',
      counts
        .map((n, i) => `${(i * step).toFixed(1)},${(CHART_HEIGHT - 2 - (n / peak) * (CHART_HEIGHT - 6)).toFixed(1)}`)
        .join(' '),
    );
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', color);
    line.setAttribute('stroke-width', '2');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    line.dataset.topic = topic;
    line.dataset.events = String(counts.reduce((a, b) => a + b, 0));
    lines.push(line);

    const item = document.createElement('li');
    item.dataset.topic = topic;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = color;
    // The last full second, not the one still being counted.
    const now = counts.at(-2) ?? 0;
    item.append(swatch, ` ${topic} `, Object.assign(document.createElement('small'), { textContent: `${now}/s` }));
    legend.push(item);
  }
  ui.chartSvg.replaceChildren(...lines);
  ui.legend.replaceChildren(...legend);
  ui.chartSvg.dataset.peak = String(peak);
  const caption = ui.chart.querySelector('figcaption');
  if (caption) caption.textContent = `Events per second, last minute, by topic (peak ${peak}/s)`;
}

setInterval(drawChart, 1000);

// ---- wiring ----

ui.pauseCap.textContent =
  `Pause stops drawing, not receiving: it holds the newest ${MAX_ROWS} events and drops older ones. ` +
  `The list shows the newest ${MAX_ROWS} events.`;

ui.form.addEventListener('submit', (e) => {
  e.preventDefault();
  connect();
});
ui.disconnect.addEventListener('click', disconnect);
ui.pause.addEventListener('click', () => setPaused(!state.paused));
ui.filter.addEventListener('input', applyFilter);
ui.refresh.addEventListener('click', () => void loadTopics());
ui.topicSearch.addEventListener('input', searchTopics);
ui.topics.addEventListener('change', searchTopics);

const listed = await loadTopics();
const requested = topicsInUrl();
const unknown = listed ? requested.filter((t) => !listed.has(t)) : [];
if (unknown.length > 0) {
  showNotice(
    `Unknown topic${unknown.length === 1 ? '' : 's'} in the address (?topics=): ${unknown.join(', ')}. ` +
      'This server has no such topic, or does not serve it: pick topics from the list.',
    'error',
  );
} else if (requested.length > 0 && selectedBoxes().length > 0) connect();
