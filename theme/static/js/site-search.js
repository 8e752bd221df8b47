// Site search on /search/. Two indexes, both files of this site, are read in the browser:
// Pagefind's, over the articles, treatments and conditions (full text), and the directory
// index over clinics and physicians (plugins/clinic_directory/directory_search.py). No
// request goes anywhere else, and nothing typed is stored. Result text is put into the page
// as text nodes; only Pagefind's <mark> highlights are rebuilt as elements.
(function () {
  "use strict";

  var MAX_RESULTS = 20;
  var MAX_TERMS = 10;
  var form = document.querySelector("[data-site-search]");
  if (!form) return;
  var input = form.querySelector("input[name=q]");
  var status = document.querySelector("[data-search-status]");
  var sections = {
    pages: document.querySelector("[data-search-section=pages]"),
    directory: document.querySelector("[data-search-section=directory]")
  };
  var lists = {
    pages: document.querySelector("[data-pages-results]"),
    directory: document.querySelector("[data-directory-results]")
  };
  var pagefindUrl = new URL(form.getAttribute("data-pagefind-url"), document.baseURI).href;
  var siteRoot = new URL(form.getAttribute("data-site-root"), document.baseURI);
  var directoryRoot = new URL(form.getAttribute("data-directory-url"), document.baseURI);
  var pagefindPromise = null;
  var latest = 0;

  // -- Pagefind: articles, treatments, conditions -------------------------------------------

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

  function searchPages(query) {
    return loadPagefind()
      .then(function (pagefind) { return pagefind.search(query); })
      .then(function (search) {
        var found = search ? search.results : [];
        return Promise.all(found.slice(0, MAX_RESULTS).map(function (r) { return r.data(); }))
          .then(function (data) {
            return {
              total: found.length,
              items: data.map(function (d) {
                return { kind: d.meta && d.meta.kind, url: d.url, title: (d.meta && d.meta.title) || d.url,
                         excerpt: d.excerpt };
              })
            };
          });
      });
  }

  // -- The directory index: clinics and physicians -------------------------------------------

  var cache = new Map();  // URL -> promise of its JSON

  function fetchJson(path) {
    var url = new URL(path, directoryRoot).href;
    if (!cache.has(url)) {
      var request = fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status + " for " + url);
        return response.json();
      });
      request.catch(function () { cache.delete(url); });
      cache.set(url, request);
    }
    return cache.get(url);
  }

  // The same words as directory_search.words(): no accents, lower case, letters and
  // digits, two characters or more.
  function words(text) {
    var plain = text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
    var seen = new Set();
    return (plain.match(/[a-z0-9]+/g) || []).filter(function (word) {
      if (word.length < 2 || seen.has(word)) return false;
      seen.add(word);
      return true;
    });
  }

  // A document's score for one term: the term is a word of its name (4) or begins one (3),
  // is another of its words (2) or begins one (1).
  function termScores(shard, term) {
    var scores = new Map();
    Object.keys(shard).forEach(function (word) {
      if (word.slice(0, term.length) !== term) return;
      var exact = word === term;
      [[shard[word][0], exact ? 4 : 3], [shard[word][1], exact ? 2 : 1]].forEach(function (pair) {
        pair[0].forEach(function (doc) {
          if ((scores.get(doc) || 0) < pair[1]) scores.set(doc, pair[1]);
        });
      });
    });
    return scores;
  }

  function searchDirectory(query) {
    var terms = words(query).slice(0, MAX_TERMS);
    if (!terms.length) return Promise.resolve({ total: 0, items: [] });
    return fetchJson("index.json").then(function (index) {
      var present = new Set(index.shards);
      return Promise.all(terms.map(function (term) {
        var key = term.slice(0, 2);
        return present.has(key) ? fetchJson("words/" + key + ".json") : Promise.resolve({});
      })).then(function (shards) {
        // Every term must match (each as a word or the start of one); scores add up.
        var total = null;
        terms.forEach(function (term, i) {
          var mine = termScores(shards[i], term);
          if (total === null) { total = mine; return; }
          var both = new Map();
          total.forEach(function (score, doc) {
            if (mine.has(doc)) both.set(doc, score + mine.get(doc));
          });
          total = both;
        });
        var ranked = Array.from(total.entries()).sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; });
        var top = ranked.slice(0, MAX_RESULTS).map(function (entry) { return entry[0]; });
        var blocks = Array.from(new Set(top.map(function (doc) { return Math.floor(doc / index.block); })));
        return Promise.all(blocks.map(function (n) { return fetchJson("docs/" + n + ".json"); }))
          .then(function (files) {
            var byBlock = new Map();
            blocks.forEach(function (n, i) { byBlock.set(n, files[i]); });
            return {
              total: ranked.length,
              items: top.map(function (doc) {
                var row = byBlock.get(Math.floor(doc / index.block))[doc % index.block];
                return { kind: row[0], url: row[1], title: row[2], detail: row[3] };
              })
            };
          });
      });
    });
  }

  // -- Showing results -----------------------------------------------------------------------

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

  function render(name, results) {
    var list = lists[name];
    list.textContent = "";
    results.items.forEach(function (data) {
      var item = document.createElement("li");
      item.setAttribute("data-result-url", new URL(data.url, siteRoot).pathname);
      if (data.kind) {
        var label = document.createElement("span");
        label.className = "result-kind";
        label.textContent = data.kind;
        item.appendChild(label);
      }
      var heading = document.createElement("h3");
      var link = document.createElement("a");
      link.href = sameSiteHref(data.url);
      link.textContent = data.title;
      heading.appendChild(link);
      item.appendChild(heading);
      if (data.excerpt || data.detail) {
        var text = document.createElement("p");
        if (data.excerpt) appendExcerpt(text, data.excerpt); else text.textContent = data.detail;
        item.appendChild(text);
      }
      list.appendChild(item);
    });
    sections[name].hidden = results.items.length === 0;
  }

  function counted(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function summary(query, pages, directory) {
    var parts = [];
    if (pages.total) parts.push(counted(pages.total, "page", "pages"));
    if (directory.total) parts.push(counted(directory.total, "clinic or physician", "clinics or physicians"));
    if (!parts.length) return "Nothing matches \u201c" + query + "\u201d. Try fewer or different words.";
    var verb = parts.length === 1 && (pages.total || directory.total) === 1 ? " matches" : " match";
    var cut = pages.items.length < pages.total || directory.items.length < directory.total;
    return parts.join(" and ") + verb + " \u201c" + query + "\u201d" +
      (cut ? " (showing the first " + MAX_RESULTS + " of each)" : "") + ".";
  }

  function clear() {
    ["pages", "directory"].forEach(function (name) { render(name, { total: 0, items: [] }); });
  }

  function run(query) {
    var ticket = ++latest;
    query = query.trim();
    if (!query) {
      clear();
      setStatus("");
      return Promise.resolve();
    }
    setStatus("Searching\u2026");
    function settle(promise) {
      return promise.catch(function () { return null; });
    }
    return Promise.all([settle(searchPages(query)), settle(searchDirectory(query))]).then(function (outcome) {
      if (ticket !== latest) return;  // a newer search has started
      if (outcome[0] === null || outcome[1] === null) {
        clear();
        setStatus("Search is not available right now. The site must be opened over http(s), not as a local file.");
      } else {
        render("pages", outcome[0]);
        render("directory", outcome[1]);
        setStatus(summary(query, outcome[0], outcome[1]));
      }
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
