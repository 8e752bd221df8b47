// Site search on /search/: runs Pagefind's index in the browser. The index files are
// part of this site, so no request goes anywhere else, and nothing typed is stored.
// Result text is put into the page as text nodes; only Pagefind's <mark> highlights
// are rebuilt as elements.
(function () {
  "use strict";

  var MAX_RESULTS = 20;
  var form = document.querySelector("[data-site-search]");
  if (!form) return;
  var input = form.querySelector("input[name=q]");
  var status = document.querySelector("[data-search-status]");
  var list = document.querySelector("[data-search-results]");
  var pagefindUrl = new URL(form.getAttribute("data-pagefind-url"), document.baseURI).href;
  var siteRoot = new URL(form.getAttribute("data-site-root"), document.baseURI);
  var pagefindPromise = null;
  var latest = 0;

  function loadPagefind() {
    if (!pagefindPromise) {
      pagefindPromise = import(pagefindUrl).then(function (pagefind) {
        // Result URLs are relative to the site's root, wherever the site is served from.
        return Promise.resolve(pagefind.options({ baseUrl: siteRoot.pathname }))
          .then(function () { return pagefind.init ? pagefind.init() : null; })
          .then(function () { return pagefind; });
      });
      pagefindPromise.catch(function () { pagefindPromise = null; });
    }
    return pagefindPromise;
  }

  function setStatus(text) {
    status.textContent = text;
  }

  // Pagefind's excerpt is HTML-escaped text with <mark> around matches.
  function appendExcerpt(target, html) {
    var doc = new DOMParser().parseFromString("<!doctype html><body>" + html, "text/html");
    doc.body.childNodes.forEach(function (node) {
      if (node.nodeType === Node.ELEMENT_NODE && node.nodeName === "MARK") {
        var mark = document.createElement("mark");
        mark.textContent = node.textContent;
        target.appendChild(mark);
      } else {
        target.appendChild(document.createTextNode(node.textContent || ""));
      }
    });
  }

  function sameSiteHref(url) {
    var resolved = new URL(url, siteRoot);
    return resolved.origin === window.location.origin ? resolved.href : "#";
  }

  function render(results) {
    list.textContent = "";
    results.forEach(function (data) {
      var item = document.createElement("li");
      item.setAttribute("data-result-url", new URL(data.url, siteRoot).pathname);
      var kind = data.meta && data.meta.kind;
      if (kind) {
        var label = document.createElement("span");
        label.className = "result-kind";
        label.textContent = kind;
        item.appendChild(label);
      }
      var heading = document.createElement("h2");
      var link = document.createElement("a");
      link.href = sameSiteHref(data.url);
      link.textContent = (data.meta && data.meta.title) || data.url;
      heading.appendChild(link);
      item.appendChild(heading);
      if (data.excerpt) {
        var excerpt = document.createElement("p");
        appendExcerpt(excerpt, data.excerpt);
        item.appendChild(excerpt);
      }
      list.appendChild(item);
    });
  }

  function run(query) {
    var ticket = ++latest;
    query = query.trim();
    if (!query) {
      list.textContent = "";
      setStatus("");
      return Promise.resolve();
    }
    setStatus("Searching\u2026");
    return loadPagefind()
      .then(function (pagefind) { return pagefind.search(query); })
      .then(function (search) {
        var found = search ? search.results : [];
        return Promise.all(found.slice(0, MAX_RESULTS).map(function (r) { return r.data(); }))
          .then(function (data) { return { total: found.length, data: data }; });
      })
      .then(function (outcome) {
        if (ticket !== latest) return;  // a newer search has started
        render(outcome.data);
        if (!outcome.total) {
          setStatus("No pages match \u201c" + query + "\u201d. Try fewer or different words.");
        } else {
          var shown = outcome.data.length < outcome.total ? " (showing the first " + outcome.data.length + ")" : "";
          setStatus(outcome.total + (outcome.total === 1 ? " page matches" : " pages match") +
                    " \u201c" + query + "\u201d" + shown + ".");
        }
        form.setAttribute("data-search-done", query);
      })
      .catch(function () {
        if (ticket !== latest) return;
        list.textContent = "";
        setStatus("Search is not available right now. The site must be opened over http(s), not as a local file.");
        form.setAttribute("data-search-done", query);
      });
  }

  function remember(query) {
    var url = new URL(window.location.href);
    if (query) url.searchParams.set("q", query); else url.searchParams.delete("q");
    window.history.replaceState(null, "", url.href);
  }

  var timer = null;
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(function () {
      remember(input.value.trim());
      run(input.value);
    }, 250);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.clearTimeout(timer);
    remember(input.value.trim());
    run(input.value);
  });

  var initial = new URLSearchParams(window.location.search).get("q") || "";
  if (initial) {
    input.value = initial.slice(0, 200);
    run(input.value);
  }
})();
