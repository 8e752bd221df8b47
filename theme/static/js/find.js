/* Location search for /find/ (INTERFACE.md, "Location search").
 *
 * Everything runs in this browser on JSON files served by the site itself (written by
 * plugins/clinic_directory/search_index.py and geo.py): the query, and the position when
 * the visitor shares it, never leave the device. No third-party request is made.
 *
 * Data, relative to the form's data-search-data URL:
 *   zip/<first 3 digits>.json     {zip: [lat, lon, city, state]}
 *   city/<shard>.json             {normalized name: [[name, state, lat, lon], ...]}
 *   city-names/<state>.json       [name, ...]  (only to suggest a spelling)
 *   index.json                    {services, conditions, cells: [[key, count], ...]}
 *   cells/<key>.json              {clinics: {slug: [name, url, accepting, [s], [c]]}, locations: [...]}
 *   filter/<kind>/<slug>.json     [cell key, ...]
 * The city normalization, shard hash and Earth radius come from geo.py through #find-config.
 */
(function () {
  "use strict";

  var form = document.getElementById("find-form");
  var configElement = document.getElementById("find-config");
  if (!form || !configElement) return;

  var config = JSON.parse(configElement.textContent);
  var results = document.getElementById("results");
  var statusBox = document.getElementById("results-status");
  var suggestionsBox = document.getElementById("near-suggestions");
  var nearInput = document.getElementById("find-near");
  var radiusSelect = document.getElementById("find-radius");
  var locateButton = document.getElementById("use-my-location");
  var dataBase = new URL(form.getAttribute("data-search-data"), document.baseURI);
  var siteRoot = form.getAttribute("data-root") || "";
  var geo = config.geo;
  var DEG = Math.PI / 180;
  var BATCH = 6; // cells fetched at once while widening the search for the nearest matches

  // -- small helpers -------------------------------------------------------------------------------------

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function plural(count, one, many) { return count + " " + (count === 1 ? one : many); }

  function miles(value) {
    return value.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  }

  /* Great-circle distance in statute miles: haversine on geopy's mean Earth radius (geo.distance_mi). */
  function distanceMi(lat1, lon1, lat2, lon2) {
    var phi1 = lat1 * DEG, phi2 = lat2 * DEG;
    var dphi = phi2 - phi1, dlam = (lon2 - lon1) * DEG;
    var h = Math.pow(Math.sin(dphi / 2), 2) + Math.cos(phi1) * Math.cos(phi2) * Math.pow(Math.sin(dlam / 2), 2);
    return 2 * geo.earthRadiusMi * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  /* Lower case ASCII words: "Complex Regional-Pain" -> "complex regional pain". */
  function fold(text) {
    return text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  }

  /* Mirrors geo.normalize_city: folded words, abbreviations spelled out, joined without spaces. */
  function normalizeCity(name) {
    return fold(name).split(" ").filter(Boolean).map(function (word) {
      return Object.prototype.hasOwnProperty.call(geo.cityWords, word) ? geo.cityWords[word] : word;
    }).join("");
  }

  /* Mirrors geo.city_shard_key: FNV-1a (32 bit) over the UTF-8 bytes, modulo the shard count, in hex. */
  function cityShardKey(normalized) {
    var hash = 0x811c9dc5;
    new TextEncoder().encode(normalized).forEach(function (byte) {
      hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    });
    var key = (hash % geo.cityShards).toString(16);
    while (key.length < 3) key = "0" + key;
    return key;
  }

  function editDistance(a, b) {
    var previous = [], current, i, j;
    for (j = 0; j <= b.length; j++) previous.push(j);
    for (i = 1; i <= a.length; i++) {
      current = [i];
      for (j = 1; j <= b.length; j++) {
        current.push(Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
      }
      previous = current;
    }
    return previous[b.length];
  }

  // -- data, fetched once per page and counted per search -------------------------------------------------

  var fetched = new Map();
  // What was downloaded since the last search finished: that search's cost (prefetches included).
  var transfer = { bytes: 0, files: 0 };

  function getJSON(path) {
    if (!fetched.has(path)) {
      var promise = fetch(new URL(path, dataBase), { credentials: "same-origin" }).then(function (response) {
        if (response.status === 404) return null;
        if (!response.ok) throw new Error("HTTP " + response.status + " for " + path);
        return response.text().then(function (text) {
          transfer.bytes += new TextEncoder().encode(text).length;
          transfer.files += 1;
          return JSON.parse(text);
        });
      });
      promise.catch(function () { fetched.delete(path); });
      fetched.set(path, promise);
    }
    return fetched.get(path);
  }

  // -- where "near" is ------------------------------------------------------------------------------------

  var stateByName = {};
  Object.keys(config.states).forEach(function (code) { stateByName[normalizeCity(config.states[code])] = code; });

  function stateCode(text) {
    var upper = text.trim().toUpperCase().replace(/\./g, "");
    if (Object.prototype.hasOwnProperty.call(config.states, upper)) return upper;
    var name = normalizeCity(text);
    return Object.prototype.hasOwnProperty.call(stateByName, name) ? stateByName[name] : null;
  }

  /* "77494", "77494-1234", "Katy, TX 77494" -> a ZIP; "Evanston, IL", "Evanston IL", "Evanston, Illinois", "Evanston". */
  function parseNear(raw) {
    var text = (raw || "").trim().replace(/\s+/g, " ");
    if (!text) return { kind: "empty" };
    var zip = /(?:^|[^0-9])([0-9]{5})(?:-[0-9]{4})?(?:$|[^0-9])/.exec(text);
    if (zip) return { kind: "zip", zip: zip[1], text: text };
    if (/^[0-9 -]+$/.test(text)) return { kind: "invalid", text: text, reason: "A ZIP code has 5 digits." };
    var city = text, state = null, comma = text.lastIndexOf(",");
    if (comma >= 0) {
      city = text.slice(0, comma).trim();
      var statePart = text.slice(comma + 1).trim();
      if (statePart) {
        state = stateCode(statePart);
        if (!state) return { kind: "invalid", text: text, reason: "“" + statePart + "” is not a US state we know." };
      }
    } else {
      var words = text.split(" ");
      for (var take = Math.min(3, words.length - 1); take >= 1 && !state; take--) {
        var candidate = stateCode(words.slice(words.length - take).join(" "));
        if (candidate) { state = candidate; city = words.slice(0, words.length - take).join(" "); }
      }
    }
    if (!normalizeCity(city)) return { kind: "invalid", text: text, reason: "Type a city name before the state." };
    return { kind: "city", city: city, state: state, text: text };
  }

  function unknownPlace(message, suggestions) {
    return { unknown: true, message: message, suggestions: suggestions || [] };
  }

  function resolveZip(parsed) {
    return getJSON("zip/" + parsed.zip.slice(0, 3) + ".json").then(function (shard) {
      var entry = shard && Object.prototype.hasOwnProperty.call(shard, parsed.zip) ? shard[parsed.zip] : null;
      if (entry) return { lat: entry[0], lon: entry[1], label: entry[2] + ", " + entry[3] + " " + parsed.zip };
      var close = Object.keys(shard || {}).sort(function (a, b) {
        return Math.abs(a - parsed.zip) - Math.abs(b - parsed.zip) || (a < b ? -1 : 1);
      }).slice(0, 3).map(function (code) { return code; });
      return unknownPlace("Unknown ZIP code " + parsed.zip + ": it is not in the US ZIP code list. " +
        "Check the five digits, or type a city and state, for example “Evanston, IL”." +
        (close.length ? " Nearby ZIP codes: " + close.join(", ") + "." : ""), close);
    });
  }

  function resolveCity(parsed) {
    var key = normalizeCity(parsed.city);
    return getJSON("city/" + cityShardKey(key) + ".json").then(function (shard) {
      var places = shard && Object.prototype.hasOwnProperty.call(shard, key) ? shard[key] : [];
      var asPoint = function (place) { return { lat: place[2], lon: place[3], label: place[0] + ", " + place[1] }; };
      var names = places.map(function (place) { return place[0] + ", " + place[1]; });
      if (parsed.state) {
        var match = places.filter(function (place) { return place[1] === parsed.state; })[0];
        if (match) return asPoint(match);
        return getJSON("city-names/" + parsed.state + ".json").then(function (list) {
          var suggestions = spellingSuggestions(key, list || []).map(function (name) { return name + ", " + parsed.state; });
          suggestions = suggestions.concat(names).slice(0, 5);
          return unknownPlace("Unknown city “" + parsed.city + ", " + parsed.state + "”: it is not in the US ZIP code " +
            "list for " + config.states[parsed.state] + "." +
            (suggestions.length ? " Did you mean " + suggestions.join(" or ") + "?" : "") +
            " Check the spelling, or type a 5-digit ZIP code.", suggestions);
        });
      }
      if (places.length === 1) return asPoint(places[0]);
      if (places.length > 1) {
        return unknownPlace("There are places called " + places[0][0] + " in " + places.length + " states: " +
          "add the state, for example " + names.slice(0, 5).map(function (n) { return "“" + n + "”"; }).join(" or ") + ".",
          names.slice(0, 5));
      }
      return unknownPlace("Unknown city “" + parsed.city + "”. Type the city with its state, for example " +
        "“Evanston, IL”, or a 5-digit ZIP code.", []);
    });
  }

  function spellingSuggestions(key, names) {
    var limit = Math.max(1, Math.floor(key.length / 4));
    return names.map(function (name) {
      var other = normalizeCity(name);
      var distance = editDistance(key, other);
      if (other.indexOf(key) === 0 && key.length >= 3) distance = Math.min(distance, 1);
      return { name: name, distance: distance };
    }).filter(function (item) { return item.distance <= limit; })
      .sort(function (a, b) { return a.distance - b.distance || (a.name < b.name ? -1 : 1); })
      .slice(0, 3).map(function (item) { return item.name; });
  }

  // -- the location index -------------------------------------------------------------------------------

  function cellBox(key) {
    var parts = key.split("_").map(Number), size = 1 / Math.pow(2, parts[0]);
    return { key: key, lat0: parts[1] * size, lat1: (parts[1] + 1) * size, lon0: parts[2] * size, lon1: (parts[2] + 1) * size };
  }

  /* A distance no location in the cell can be closer than: the latitude gap, or the distance to
     the cell's centre less the centre's distance to its farthest corner (triangle inequality). */
  function lowerBound(point, box) {
    var gap = point.lat < box.lat0 ? box.lat0 - point.lat : point.lat > box.lat1 ? point.lat - box.lat1 : 0;
    var clat = (box.lat0 + box.lat1) / 2, clon = (box.lon0 + box.lon1) / 2;
    var reach = Math.max(distanceMi(clat, clon, box.lat0, box.lon0), distanceMi(clat, clon, box.lat1, box.lon0),
      distanceMi(clat, clon, box.lat0, box.lon1), distanceMi(clat, clon, box.lat1, box.lon1));
    var bound = Math.max(geo.earthRadiusMi * gap * DEG, distanceMi(point.lat, point.lon, clat, clon) - reach * 1.000001);
    return Math.max(0, bound - 1e-6);
  }

  function loadCells(boxes, query, point, matches, onCell) {
    return Promise.all(boxes.map(function (box) {
      return getJSON("cells/" + box.key + ".json").then(function (cell) {
        box.loaded = true;
        (cell ? cell.locations : []).forEach(function (row) {
          var clinic = cell.clinics[row[0]];
          if (query.serviceIndex >= 0 && clinic[3].indexOf(query.serviceIndex) < 0) return;
          if (query.conditionIndex >= 0 && clinic[4].indexOf(query.conditionIndex) < 0) return;
          matches.push({ distance: distanceMi(point.lat, point.lon, row[2], row[3]), clinic: clinic, row: row });
        });
        if (onCell) onCell();
      });
    }));
  }

  function byDistance(a, b) {
    return a.distance - b.distance || (a.row[0] < b.row[0] ? -1 : a.row[0] > b.row[0] ? 1 : 0) ||
      (a.row[1] < b.row[1] ? -1 : a.row[1] > b.row[1] ? 1 : 0);
  }

  /* Matching locations within the radius; when there are none, the nearest few anywhere. */
  /* The index and filter lists a query needs: fetched while the place is still being looked up. */
  function indexFiles(query) {
    var files = [getJSON("index.json")];
    if (query.treatment) files.push(getJSON("filter/treatment/" + query.treatment + ".json"));
    if (query.condition) files.push(getJSON("filter/condition/" + query.condition + ".json"));
    return Promise.all(files);
  }

  /* ``onSettled(list, index)`` is called as cells arrive with the matches already known to open
     the final list: those nearer than any cell still loading. It only ever grows at the end. */
  function findLocations(query, point, onSettled) {
    return indexFiles(query).then(function (loaded) {
      var index = loaded[0];
      if (!index) throw new Error("index.json is missing");
      query.serviceIndex = query.treatment ? index.services.indexOf(query.treatment) : -1;
      query.conditionIndex = query.condition ? index.conditions.indexOf(query.condition) : -1;
      var keys = index.cells.map(function (cell) { return cell[0]; });
      loaded.slice(1).forEach(function (allowed) {
        var set = new Set(allowed || []);
        keys = keys.filter(function (key) { return set.has(key); });
      });
      var boxes = keys.map(function (key) {
        var box = cellBox(key);
        box.bound = lowerBound(point, box);
        return box;
      }).sort(function (a, b) { return a.bound - b.bound || (a.key < b.key ? -1 : 1); });
      var matches = [];
      var near = boxes.filter(function (box) { return box.bound <= query.radius; });
      var settle = function () {
        var frontier = Infinity; // no match still to come can be nearer than this
        near.forEach(function (box) { if (!box.loaded && box.bound < frontier) frontier = box.bound; });
        onSettled(matches.filter(function (m) {
          return m.distance <= query.radius && m.distance < frontier;
        }).sort(byDistance), index);
      };
      return loadCells(near, query, point, matches, settle).then(function () {
        var within = matches.filter(function (m) { return m.distance <= query.radius; }).sort(byDistance);
        if (within.length || !boxes.length) return { index: index, within: within, nearest: [] };
        var next = near.length;
        var widen = function () {
          matches.sort(byDistance);
          var enough = matches.length >= config.nearestFallback &&
            (next >= boxes.length || matches[config.nearestFallback - 1].distance <= boxes[next].bound);
          if (enough || next >= boxes.length) {
            return { index: index, within: [], nearest: matches.slice(0, config.nearestFallback) };
          }
          var batch = boxes.slice(next, next + BATCH);
          next += batch.length;
          return loadCells(batch, query, point, matches).then(widen);
        };
        return widen();
      });
    });
  }

  // -- showing results ------------------------------------------------------------------------------------

  function entryNames(indexes, slugs, table) {
    return indexes.map(function (i) { return table[slugs[i]] ? table[slugs[i]][0] : slugs[i]; });
  }

  function resultItem(match, index) {
    var clinic = match.clinic, row = match.row;
    var lat = row[2], lon = row[3];
    var clinicLink = el("a", { href: siteRoot + "/" + clinic[1] + "#location-" + row[1] }, [clinic[0]]);
    var distance = el("p", { class: "result-distance" }, [el("strong", {}, [miles(match.distance)]), " miles away"]);
    var location = el("p", { class: "result-location" }, [row[4]]);
    var placeholder = row[7] ? el("p", { class: "badge" }, ["Sample data: placeholder address and phone"]) : null;
    var facts = el("dl", { class: "result-facts" }, [
      el("div", {}, [el("dt", {}, ["Phone"]),
        el("dd", {}, [el("a", { href: "tel:+" + row[6].replace(/\D/g, "") }, [row[6]])])]),
      el("div", {}, [el("dt", {}, ["Treatments"]),
        el("dd", {}, [entryNames(clinic[3], index.services, config.services).join(", ") || "Not listed"])]),
      el("div", {}, [el("dt", {}, ["New patients"]),
        el("dd", { class: clinic[2] ? "accepting" : "not-accepting" },
          [clinic[2] ? "Accepting new patients" : "Not accepting new patients"])]),
    ]);
    var map = el("a", {
      href: "https://www.openstreetmap.org/?mlat=" + lat + "&mlon=" + lon + "#map=15/" + lat + "/" + lon,
      rel: "external noopener noreferrer",
    }, ["Map and directions", el("span", { class: "visually-hidden" }, [" for " + clinic[0] + ", " + row[4]]),
      " (openstreetmap.org)"]);
    return el("li", {
      class: "result card",
      "data-clinic": row[0],
      "data-location": row[1],
      "data-distance-mi": match.distance.toFixed(1),
    }, [el("div", { class: "result-head" }, [el("h3", {}, [clinicLink]), distance]), location]
      .concat(placeholder ? [placeholder] : [])
      .concat([el("address", {}, [row[5]]), facts, el("p", { class: "result-map" }, [map])]));
  }

  function appendResults(matches, index) {
    var fragment = document.createDocumentFragment();
    matches.forEach(function (match) { fragment.appendChild(resultItem(match, index)); });
    results.appendChild(fragment);
  }

  function filterText(query) {
    var parts = [];
    if (query.treatment) parts.push("treatment: " + config.services[query.treatment][0]);
    if (query.condition) parts.push("condition: " + config.conditions[query.condition][0]);
    return parts.length ? " (" + parts.join("; ") + ")" : "";
  }

  // -- one search, start to finish -------------------------------------------------------------------------

  var searchCount = 0;
  var searchStarted = 0;

  function setStatus(text) { statusBox.textContent = text; }

  function setSuggestions(query, names) {
    suggestionsBox.textContent = "";
    suggestionsBox.hidden = !names.length;
    if (!names.length) return;
    suggestionsBox.appendChild(document.createTextNode("Try: "));
    names.forEach(function (name, n) {
      if (n) suggestionsBox.appendChild(document.createTextNode(" · "));
      var link = el("a", { href: "?" + queryString(Object.assign({}, query, { near: name })) }, [name]);
      link.addEventListener("click", function (event) {
        event.preventDefault();
        nearInput.value = name;
        submitSearch();
      });
      suggestionsBox.appendChild(link);
    });
  }

  function begin(text) {
    var id = ++searchCount;
    searchStarted = performance.now();
    results.setAttribute("aria-busy", "true");
    results.removeAttribute("data-first-results-ms");
    results.textContent = "";
    setSuggestions({}, []);
    setStatus(text);
    return id;
  }

  function finish(id, text, query, suggestions) {
    if (id !== searchCount) return;
    // For the benchmark: time to the final answer, and what was downloaded for it.
    results.setAttribute("data-search-ms", (performance.now() - searchStarted).toFixed(1));
    results.setAttribute("data-search-bytes", String(transfer.bytes));
    results.setAttribute("data-search-files", String(transfer.files));
    transfer = { bytes: 0, files: 0 };
    setStatus(text);
    setSuggestions(query || {}, suggestions || []);
    results.setAttribute("aria-busy", "false");
  }

  function search(query) {
    var id = begin(query.point ? "Searching near your location…" : "Searching…");
    var unknown = [["treatment", config.services], ["condition", config.conditions]].filter(function (pair) {
      return query[pair[0]] && !Object.prototype.hasOwnProperty.call(pair[1], query[pair[0]]);
    })[0];
    if (unknown) {
      finish(id, "Unknown " + unknown[0] + " “" + query[unknown[0]] + "”: choose one from the list.", query);
      return Promise.resolve();
    }
    var where;
    if (query.point) {
      where = Promise.resolve(query.point);
    } else {
      var parsed = parseNear(query.near);
      if (parsed.kind === "empty") {
        finish(id, "Type a ZIP code or a city, or use your location, to see the nearest clinics" +
          (query.treatment || query.condition ? filterText(query).replace(/^ \((.*)\)$/, " for $1") : "") + ".", query);
        return Promise.resolve();
      }
      if (parsed.kind === "invalid") {
        finish(id, "Unknown place “" + parsed.text + "”. " + parsed.reason +
          " Type a 5-digit ZIP code (for example 60201) or a city and state (for example “Evanston, IL”).", query);
        return Promise.resolve();
      }
      where = parsed.kind === "zip" ? resolveZip(parsed) : resolveCity(parsed);
    }
    indexFiles(query).catch(function () { /* reported by findLocations */ });
    return where.then(function (point) {
      if (id !== searchCount) return null;
      if (point.unknown) {
        finish(id, point.message, query, point.suggestions);
        return null;
      }
      var shownCount = 0;
      var show = function (list, index) {
        if (id !== searchCount || list.length <= shownCount) return;
        appendResults(list.slice(shownCount), index);
        if (!shownCount) results.setAttribute("data-first-results-ms", (performance.now() - searchStarted).toFixed(1));
        shownCount = list.length;
      };
      return findLocations(query, point, show).then(function (found) {
        if (id !== searchCount) return;
        show(found.within.length ? found.within : found.nearest, found.index);
        var around = query.radius + " miles of " + point.label;
        var text;
        if (found.within.length) {
          text = "Found " + plural(found.within.length, "location", "locations") + " within " + around +
            filterText(query) + ", nearest first.";
        } else if (found.nearest.length) {
          text = "No location within " + around + filterText(query) + ". " +
            (found.nearest.length === 1 ? "The nearest one is" : "The " + found.nearest.length + " nearest are") +
            " listed instead; the closest is " + miles(found.nearest[0].distance) + " miles away.";
        } else {
          text = "No clinic in the directory matches" + (filterText(query) || " this search") +
            ". Try another treatment or condition, or leave them empty.";
        }
        finish(id, text, query);
      });
    }).catch(function () {
      finish(id, "Sorry, the search could not load its data from this site. Check your connection and try again.", query);
    });
  }

  // -- the form, the address bar and the back button -------------------------------------------------------

  function Combobox(input) {
    var list = document.getElementById(input.getAttribute("aria-controls"));
    var hidden = input.parentNode.querySelector("input[type=hidden]");
    var options = Array.prototype.map.call(list.querySelectorAll("[role=option]"), function (option) {
      return {
        element: option,
        value: option.getAttribute("data-value"),
        name: option.getAttribute("data-name"),
        terms: JSON.parse(option.getAttribute("data-terms")).map(fold),
      };
    });
    var shown = [], active = -1;

    function matching(text) {
      var q = fold(text);
      if (!q) return options.slice();
      return options.filter(function (option) {
        return option.terms.some(function (term) {
          return term.indexOf(q) === 0 || term.indexOf(" " + q) >= 0 || (q.length >= 3 && term.indexOf(q) >= 0);
        });
      });
    }

    function exact(text) {
      var q = fold(text);
      var hits = options.filter(function (option) { return option.terms.indexOf(q) >= 0; });
      return hits.length === 1 ? hits[0] : null;
    }

    function setActive(n) {
      if (active >= 0 && shown[active]) shown[active].element.setAttribute("aria-selected", "false");
      active = n;
      if (active >= 0 && shown[active]) {
        shown[active].element.setAttribute("aria-selected", "true");
        input.setAttribute("aria-activedescendant", shown[active].element.id);
        shown[active].element.scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function open(list_) {
      shown = list_;
      options.forEach(function (option) { option.element.hidden = shown.indexOf(option) < 0; });
      setActive(-1);
      list.hidden = !shown.length;
      input.setAttribute("aria-expanded", shown.length ? "true" : "false");
    }

    function close() {
      setActive(-1);
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
    }

    function choose(option) {
      input.value = option.name;
      hidden.value = option.value;
      close();
    }

    input.addEventListener("input", function () {
      var hit = exact(input.value);
      hidden.value = hit ? hit.value : "";
      if (input.value.trim()) open(matching(input.value)); else close();
    });
    input.addEventListener("keydown", function (event) {
      var isOpen = !list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!isOpen) open(matching(input.value));
        if (!shown.length) return;
        var step = event.key === "ArrowDown" ? 1 : -1;
        setActive(active < 0 ? (step > 0 ? 0 : shown.length - 1) : (active + step + shown.length) % shown.length);
      } else if (event.key === "Enter" && isOpen && active >= 0) {
        event.preventDefault();
        choose(shown[active]);
      } else if (event.key === "Escape") {
        if (isOpen) { event.preventDefault(); close(); } else if (input.value) { input.value = ""; hidden.value = ""; }
      } else if (event.key === "Tab" && isOpen) {
        if (active >= 0) choose(shown[active]); else close();
      }
    });
    input.addEventListener("blur", close);
    list.addEventListener("mousedown", function (event) { event.preventDefault(); });
    list.addEventListener("click", function (event) {
      var target = event.target.closest("[role=option]");
      var option = options.filter(function (o) { return o.element === target; })[0];
      if (option) { choose(option); input.focus(); }
    });

    return {
      kind: hidden.name,
      set: function (slug) {
        var option = options.filter(function (o) { return o.value === slug; })[0];
        input.value = option ? option.name : (slug || "");
        hidden.value = option ? option.value : (slug || "");
      },
      /* The chosen slug; typed text that names exactly one entry counts as choosing it. */
      resolve: function () {
        if (hidden.value) return { value: hidden.value };
        if (!input.value.trim()) return { value: "" };
        var hits = exact(input.value) ? [exact(input.value)] : matching(input.value);
        if (hits.length === 1) { choose(hits[0]); return { value: hits[0].value }; }
        input.focus();
        open(hits);
        return { error: hits.length ? "“" + input.value.trim() + "” matches more than one " + hidden.name +
          ": choose one from the list." : "No " + hidden.name + " matches “" + input.value.trim() +
          "”: check the spelling, or leave it empty for any." };
      },
    };
  }

  var comboboxes = {};
  Array.prototype.forEach.call(form.querySelectorAll("[role=combobox]"), function (input) {
    var box = Combobox(input);
    comboboxes[box.kind] = box;
  });

  function radiusFrom(value) {
    var radius = parseFloat(value);
    if (!isFinite(radius) || radius <= 0) return config.defaultRadius;
    return Math.min(Math.round(radius * 10) / 10, 12500);
  }

  function readURL() {
    var params = new URLSearchParams(window.location.search);
    return {
      near: (params.get("near") || "").trim(),
      treatment: (params.get("treatment") || "").trim(),
      condition: (params.get("condition") || "").trim(),
      radius: radiusFrom(params.get("radius")),
    };
  }

  function queryString(query) {
    var params = new URLSearchParams();
    if (query.near) params.set("near", query.near);
    if (query.treatment) params.set("treatment", query.treatment);
    if (query.condition) params.set("condition", query.condition);
    if (query.radius && query.radius !== config.defaultRadius) params.set("radius", String(query.radius));
    return params.toString();
  }

  function fillForm(query) {
    nearInput.value = query.near || "";
    if (comboboxes.treatment) comboboxes.treatment.set(query.treatment);
    if (comboboxes.condition) comboboxes.condition.set(query.condition);
    var value = String(query.radius);
    if (!Array.prototype.some.call(radiusSelect.options, function (o) { return o.value === value; })) {
      radiusSelect.appendChild(el("option", { value: value }, ["Within " + value + " miles"]));
    }
    radiusSelect.value = value;
  }

  function pushQuery(query, state) {
    var search = queryString(query);
    var url = window.location.pathname + (search ? "?" + search : "");
    if (url !== window.location.pathname + window.location.search || state) {
      window.history.pushState(state || null, "", url);
    }
  }

  function formQuery() {
    var query = { near: nearInput.value.trim(), radius: radiusFrom(radiusSelect.value) };
    var errors = [];
    ["treatment", "condition"].forEach(function (kind) {
      if (!comboboxes[kind]) return;
      var resolved = comboboxes[kind].resolve();
      if (resolved.error) errors.push(resolved.error);
      query[kind] = resolved.value || "";
    });
    return { query: query, errors: errors };
  }

  function submitSearch() {
    var read = formQuery();
    if (read.errors.length) {
      finish(begin(""), read.errors.join(" "), read.query);
      return;
    }
    pushQuery(read.query, null);
    search(read.query);
  }

  // Someone about to search needs the index whatever they type: start loading it.
  form.addEventListener("focusin", function () { getJSON("index.json").catch(function () {}); }, { once: true });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitSearch();
  });

  var geoMessages = {
    1: "This page may not use your location: your browser did not allow it. Type a ZIP code or a city instead.",
    2: "Your browser could not tell where you are just now. Type a ZIP code or a city instead.",
    3: "Finding your location took too long. Try again, or type a ZIP code or a city instead.",
  };

  /* The position goes into history.state (kept by this browser) but never into the address,
     which can be shared, bookmarked or sent to the server on reload. */
  function searchFromPosition(point, read) {
    var query = Object.assign({}, read.query, { near: "", point: point });
    nearInput.value = "";
    pushQuery(query, { position: { lat: point.lat, lon: point.lon } });
    return search(query);
  }

  if (locateButton) {
    locateButton.hidden = false;
    locateButton.addEventListener("click", function () {
      var read = formQuery();
      if (read.errors.length) {
        finish(begin(""), read.errors.join(" "), read.query);
        return;
      }
      if (!navigator.geolocation) {
        finish(begin(""), "This browser cannot share its location. Type a ZIP code or a city instead.", read.query);
        return;
      }
      var id = begin("Asking your browser where you are…");
      navigator.geolocation.getCurrentPosition(function (position) {
        if (id !== searchCount) return;
        searchFromPosition({ lat: position.coords.latitude, lon: position.coords.longitude, label: "your location" }, read);
      }, function (error) {
        if (id !== searchCount) return;
        finish(id, geoMessages[error.code] || geoMessages[2], read.query);
        nearInput.focus();
      }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 300000 });
    });
  }

  function runFromHistory(state) {
    var query = readURL();
    fillForm(query);
    if (!query.near && state && state.position) {
      query.point = { lat: state.position.lat, lon: state.position.lon, label: "your location" };
      return search(query);
    }
    if (query.near || query.treatment || query.condition) return search(query);
    begin("");
    finish(searchCount, "Type a ZIP code or a city, or use your location, to see the nearest clinics.", query);
    return null;
  }

  window.addEventListener("popstate", function (event) { runFromHistory(event.state); });
  runFromHistory(window.history.state);
})();
