/* Quebec dashboard: live counts and tables, list rows, and the throughput chart.
 *
 * Polls the live endpoint every few seconds while the tab is visible (and at once when it
 * becomes visible again); the server renders every fragment, escaped, so this script only
 * swaps them in. A list page also polls its rows endpoint, with the page's own filters, search
 * and page, and swaps the rows in unless the user is selecting rows or picking an action.
 * The chart is plain SVG drawn from the throughput endpoint's JSON.
 */
(function () {
    "use strict";

    const REFRESH_MS = 5000;
    const CHART_REFRESH_MS = 30000;
    const SVG = "http://www.w3.org/2000/svg";

    function liveUrl() {
        const nav = document.querySelector("[data-quebec-live-url]");
        return nav ? nav.dataset.quebecLiveUrl : null;
    }

    async function refreshLive(url) {
        const fragments = [...document.querySelectorAll("[data-quebec-fragment]")].map((el) => el.dataset.quebecFragment);
        const target = new URL(url, window.location.href);
        if (fragments.length) {
            target.searchParams.set("fragments", fragments.join(","));
        }
        const job = document.querySelector("[data-quebec-job]");
        if (job) {
            target.searchParams.set("job", job.dataset.quebecJob);  // a job page: its progress
        }
        const batch = document.querySelector("[data-quebec-batch]");
        if (batch) {
            target.searchParams.set("batch", batch.dataset.quebecBatch);  // a batch page: its progress
        }
        const response = await fetch(target, {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!response.ok) {
            return;
        }
        const data = await response.json();
        for (const [state, count] of Object.entries(data.counts)) {
            document.querySelectorAll(`[data-quebec-count="${state}"]`).forEach((el) => {
                el.textContent = count;
            });
        }
        for (const [name, html] of Object.entries(data.fragments)) {
            const el = document.querySelector(`[data-quebec-fragment="${name}"]`);
            if (el && el.dataset.quebecHtml !== html) {
                el.innerHTML = html;  // rendered and escaped by the server's templates
                el.dataset.quebecHtml = html;
            }
        }
    }

    /* Rows ticked, "select all N" chosen, or the actions bar in use: a swap would lose that work. */
    function listInUse(rows) {
        const actions = rows.querySelector(".actions");
        return Boolean(
            rows.querySelector("input.action-select:checked")
            || [...rows.querySelectorAll("input.select-across")].some((input) => input.value === "1")
            || [...rows.querySelectorAll(".actions select")].some((select) => select.value)
            || (actions && actions.contains(document.activeElement))
        );
    }

    /* Call setUp() and return a function that removes the listeners it added to the document
     * and the window; listeners on replaced elements go away with them. */
    function undoableListeners(setUp) {
        const added = [];
        const targets = [document, window];
        for (const target of targets) {
            const original = target.addEventListener;
            target.addEventListener = function (...args) {
                added.push([target, args]);
                return original.apply(target, args);
            };
        }
        try {
            setUp();
        } finally {
            for (const target of targets) {
                delete target.addEventListener;  // back to EventTarget's own method
            }
        }
        return () => added.forEach(([target, args]) => target.removeEventListener(...args));
    }

    /* The admin's actions script binds to the rows it found at load: bind it to the new ones. */
    let unbindActions = () => {};
    function bindActions(rows) {
        unbindActions();
        unbindActions = () => {};
        const checkboxes = rows.querySelectorAll("tr input.action-select");
        if (window.Actions && checkboxes.length) {
            unbindActions = undoableListeners(() => window.Actions(checkboxes));
        }
    }

    async function refreshRows(rows, hint) {
        const response = await fetch(rows.dataset.quebecRowsUrl, {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!response.ok) {
            return;
        }
        const data = await response.json();
        if (data.digest === rows.dataset.quebecDigest) {
            hint.hidden = true;
            if (!listInUse(rows) && rows.innerHTML !== data.html) {
                rows.innerHTML = data.html;  // the same rows, their times ("12 s ago") brought up to date
                bindActions(rows);
            }
        } else if (listInUse(rows)) {
            hint.hidden = false;
        } else {
            rows.innerHTML = data.html;  // rendered and escaped by the server's templates
            rows.dataset.quebecDigest = data.digest;
            hint.hidden = true;
            bindActions(rows);
        }
    }

    /* Run task() now and then every `ms`, but only while the page is visible. */
    function whileVisible(task, ms) {
        let timer = null;
        const tick = async () => {
            clearTimeout(timer);
            try {
                await task();
            } catch (error) {
                console.warn("quebec: refresh failed", error);
            }
            if (!document.hidden) {
                timer = setTimeout(tick, ms);
            }
        };
        document.addEventListener("visibilitychange", () => {
            clearTimeout(timer);
            if (!document.hidden) {
                tick();
            }
        });
        timer = setTimeout(tick, ms);
        return tick;
    }

    function svgElement(name, attributes, parent) {
        const el = document.createElementNS(SVG, name);
        for (const [key, value] of Object.entries(attributes)) {
            el.setAttribute(key, value);
        }
        parent.appendChild(el);
        return el;
    }

    function label(start, unit) {
        const date = new Date(start);
        if (unit === "day") {
            return date.toLocaleDateString(undefined, {month: "short", day: "numeric"});
        }
        return date.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});
    }

    function drawChart(container, data) {
        const width = 600, height = 180, bottom = 20, top = 14;
        const buckets = data.buckets;
        const max = Math.max(1, ...buckets.map((b) => b.processed + b.failed));
        const slot = width / buckets.length;
        const scale = (height - bottom - top) / max;
        const svg = document.createElementNS(SVG, "svg");
        svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
        svg.setAttribute("preserveAspectRatio", "none");
        svg.setAttribute("role", "img");
        const names = {processed: container.dataset.labelProcessed, failed: container.dataset.labelFailed};
        buckets.forEach((bucket, index) => {
            let y = height - bottom;
            for (const series of ["processed", "failed"]) {
                const h = bucket[series] * scale;
                if (h > 0) {
                    y -= h;
                    const bar = svgElement("rect", {
                        x: index * slot + 1, y: y, width: Math.max(slot - 2, 1), height: h,
                        class: `quebec-bar-${series}`,
                    }, svg);
                    svgElement("title", {}, bar).textContent = `${label(bucket.start, data.unit)}: ${bucket[series]} ${names[series]}`;
                }
            }
        });
        svgElement("line", {x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: "quebec-axis"}, svg);
        svgElement("text", {x: 2, y: 11}, svg).textContent = String(max);
        svgElement("text", {x: 2, y: height - 5}, svg).textContent = label(buckets[0].start, data.unit);
        svgElement("text", {x: width - 2, y: height - 5, "text-anchor": "end"}, svg).textContent = label(buckets[buckets.length - 1].start, data.unit);
        const total = (series) => buckets.reduce((sum, b) => sum + b[series], 0);
        svg.setAttribute("aria-label", `${total("processed")} ${names.processed}, ${total("failed")} ${names.failed}`);
        container.replaceChildren(svg);
        container.dataset.quebecTotalProcessed = total("processed");
    }

    function setUpChart() {
        const container = document.querySelector("[data-quebec-chart-url]");
        if (!container) {
            return;
        }
        let range = "hour";
        const load = async () => {
            const url = new URL(container.dataset.quebecChartUrl, window.location.href);
            url.searchParams.set("range", range);
            const response = await fetch(url, {credentials: "same-origin"});
            if (response.ok) {
                drawChart(container, await response.json());
            }
        };
        document.querySelectorAll("[data-quebec-range]").forEach((button) => {
            button.addEventListener("click", () => {
                range = button.dataset.quebecRange;
                document.querySelectorAll("[data-quebec-range]").forEach((other) => {
                    other.setAttribute("aria-pressed", String(other === button));
                });
                load();
            });
        });
        whileVisible(load, CHART_REFRESH_MS)();
    }

    document.addEventListener("DOMContentLoaded", () => {
        const url = liveUrl();
        if (url) {
            whileVisible(() => refreshLive(url), REFRESH_MS);
        }
        const rows = document.querySelector("[data-quebec-rows-url]");
        if (rows) {
            const hint = document.querySelector("[data-quebec-rows-hint]");
            whileVisible(() => refreshRows(rows, hint), REFRESH_MS);
        }
        setUpChart();
    });
})();
