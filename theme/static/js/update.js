// The profile-update form (update.html): builds the form from the clinic's registry entry (the
// page's #update-data), then turns the fields the clinic changed into an update file
// (INTERFACE.md section 4) that the clinic downloads and sends to the directory's maintainers.
// Nothing is sent anywhere and nothing is stored: the page only reads its own fields.
//
// Each field's name is the dotted path of its value in the clinic's registry entry, and its
// default value (defaultValue, defaultChecked) is the entry's value; a field whose value differs
// from its default becomes a change. Emptying an optional field deletes it (null); lists replace
// the whole list. The form is made with createElement and textContent only: registry text is
// never parsed as markup.
(function () {
  "use strict";

  var form = document.getElementById("update-form");
  var island = document.getElementById("update-data");
  if (!form || !island) return;
  var META_FIELDS = { submitted_by: true, signature_key: true };
  var GEO_FIELDS = /\.address\./;
  var errors = document.getElementById("update-errors");
  var result = document.getElementById("update-result");

  // -- building the form -------------------------------------------------------------------------

  var PHONE = { type: "tel", hint: "In international form, e.g. +1-281-555-0100.",
    pattern: "\\+[0-9][0-9 \\-]{6,18}[0-9]" };
  var TIME_RANGE = "[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]";
  var HOURS = { pattern: "closed|" + TIME_RANGE + "(, ?" + TIME_RANGE + ")*", unmarked: true };  // hint: days are optional
  var DAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
    ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];

  function element(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === true) node.setAttribute(name, "");
      else if (value !== false && value !== undefined && value !== null) node.setAttribute(name, value);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function idOf(path) {
    return "u-" + path.replace(/\./g, "--");
  }

  // A labelled text field. kind: "text" (one line), "long" (a paragraph), "lines" (a list, one
  // item per line) or "words" (a list separated by commas). value: the entry's value (or undefined).
  function field(path, label, value, options) {
    options = options || {};
    var id = idOf(path);
    var kind = options.kind || "text";
    var list = kind === "lines" || kind === "words";
    var text = value === undefined || value === null ? "" : list ? value.join(kind === "lines" ? "\n" : ", ") : String(value);
    var labelNode = element("label", { for: id }, [label]);
    if (!options.required && !options.unmarked) {
      labelNode.appendChild(element("span", { class: "muted" }, [" (optional)"]));
    }
    var hint = options.hint ? element("p", { class: "hint", id: id + "-hint" }, [options.hint]) : null;
    var attributes = { id: id, name: path, "data-kind": kind === "long" ? "text" : kind, required: !!options.required,
      pattern: options.pattern, "aria-describedby": hint ? id + "-hint" : null };
    var input;
    if (kind === "long" || kind === "lines") {
      input = element("textarea", Object.assign(attributes, { rows: kind === "long" ? 4 : 3 }));
    } else {
      input = element("input", Object.assign(attributes, { type: options.type || "text",
        autocomplete: options.autocomplete || "off", inputmode: options.inputmode }));
    }
    input.defaultValue = text;
    return element("div", { class: "field" }, hint ? [labelNode, hint, input] : [labelNode, input]);
  }

  function group(legend, attributes, children) {
    return element("fieldset", attributes, [element("legend", {}, [legend])].concat(children));
  }

  // Yes / No (and Not stated, when the field may be left out): true, false or null.
  function yesNo(path, legend, value, allowUnknown) {
    var choices = [["true", "Yes", value === true], ["false", "No", value === false]];
    if (allowUnknown) choices.push(["", "Not stated", value === undefined || value === null]);
    return group(legend, { class: "choice", "data-kind": "boolean", "data-path": path }, choices.map(function (c) {
      var radio = element("input", { type: "radio", name: path, value: c[0] });
      radio.defaultChecked = c[2];
      return element("label", {}, [radio, " " + c[1]]);
    }));
  }

  // A checkbox per treatment or condition; what the clinic has now is ticked.
  function choices(path, legend, options, chosen, required) {
    var legendNode = element("legend", {}, [legend]);
    if (required) legendNode.appendChild(element("span", { class: "muted" }, [" (at least one)"]));
    var items = options.map(function (option) {
      var box = element("input", { type: "checkbox", name: path, value: option[0] });
      box.defaultChecked = chosen.indexOf(option[0]) >= 0;
      return element("li", {}, [element("label", {}, [box, " " + option[1]])]);
    });
    return element("fieldset", { class: "choices", "data-kind": "choices", "data-path": path,
      "data-current": chosen.join(" "), "data-required": !!required },
    [legendNode, element("ul", { class: "choice-list" }, items), element("p", { class: "field-error", hidden: true })]);
  }

  // A tick box that changes one value when ticked: kind "not-placeholder" or "verified".
  function confirmation(path, kind, text) {
    return element("div", { class: "field confirm" }, [
      element("label", {}, [element("input", { type: "checkbox", name: path, "data-kind": kind }), " " + text])]);
  }

  function placeholderBox(item, path, text) {
    return item && item.placeholder ? [confirmation(path, "not-placeholder", text)] : [];
  }

  // Ticked, the entry is deleted (null) and its other fields are set aside (disabled: not checked, not sent).
  function removal(path, text) {
    var box = element("input", { type: "checkbox", id: idOf(path) + "--remove", name: path, "data-kind": "remove" });
    box.addEventListener("change", function () {
      box.closest("fieldset").querySelectorAll("input, textarea").forEach(function (input) {
        if (input !== box) input.disabled = box.checked;
      });
    });
    return element("div", { class: "field confirm" }, [element("label", {}, [box, " " + text])]);
  }

  // A new location or physician can be taken out again before the file is made.
  function newEntryControls(what) {
    var button = element("button", { type: "button", class: "secondary" }, ["Do not add this " + what]);
    button.addEventListener("click", function () {
      var fresh = button.closest("fieldset");
      var add = form.querySelector("button[data-add='" + what + "']");
      fresh.remove();
      add.focus();
    });
    return element("p", {}, [button]);
  }

  var added = 0;
  // "Add a location" / "Add a physician": an empty group before the button, its first field focused.
  function adder(what, make) {
    var button = element("button", { type: "button", class: "secondary", "data-add": what }, ["Add a " + what]);
    button.addEventListener("click", function () {
      added += 1;
      var fresh = make("new-" + added);
      button.parentNode.insertBefore(fresh, button);
      fresh.querySelector("input[type='text'], input:not([type])").focus();
    });
    return element("p", {}, [button]);
  }

  // A location's fields; a new one (slug "new-N", location {}) is named from its city when the file is made.
  function locationGroup(slug, location, isNew) {
    var at = "locations." + slug;
    var address = location.address || {};
    var hours = location.hours || {};
    var first = isNew ? [newEntryControls("location")] :
      [removal(at, "This office has closed: remove it from the directory")].concat(
        placeholderBox(location, at + ".placeholder", "These are this location's real address, phone and hours"));
    return group(isNew ? "New location" : "Location: " + location.name,
      { class: "location", "data-path": at, "data-has-geo": !!location.geo, "data-new": isNew ? "locations" : null },
      first.concat([
        field(at + ".name", "Name of the office", location.name, { required: true }),
        field(at + ".address.street", "Street address", address.street, { required: true }),
        field(at + ".address.street2", "Suite or floor", address.street2),
        field(at + ".address.city", "City", address.city, { required: true }),
        field(at + ".address.state", "State", address.state, { required: true, hint: "Two-letter code, e.g. TX.",
          pattern: "[A-Z]{2}" }),
        field(at + ".address.postal_code", "ZIP code", address.postal_code, { required: true, pattern: "[0-9]{5}",
          inputmode: "numeric" }),
        field(at + ".phone", "Phone", location.phone, Object.assign({ required: true }, PHONE)),
        field(at + ".fax", "Fax", location.fax, PHONE),
        group("Opening hours", { class: "hours-fields" }, [
          element("p", { class: "hint" }, ["24-hour time like 08:00-17:00 (several ranges separated by commas), " +
            "or closed. Leave a day empty if you do not want to list it."])
        ].concat(DAYS.map(function (day) {
          return field(at + ".hours." + day[0], day[1], hours[day[0]], HOURS);
        })))
      ]));
  }

  // A physician's fields; a new one (slug "new-N", physician {}) is named from the name when the file is made.
  function physicianGroup(slug, physician, isNew) {
    var at = "physicians." + slug;
    var first = isNew ? [newEntryControls("physician")] :
      [removal(at, "No longer practises at this clinic: remove from the directory")].concat(
        placeholderBox(physician, at + ".placeholder", "These are this physician's real details"));
    return group(isNew ? "New physician" : "Physician: " + physician.name,
      { class: "physician", "data-path": at, "data-new": isNew ? "physicians" : null }, first.concat([
        field(at + ".name", "Full name, without title", physician.name, { required: true }),
        field(at + ".credentials", "Degrees", physician.credentials, { kind: "words",
          hint: "Separated by commas, e.g. MD, PhD." }),
        field(at + ".board_certifications", "Board certifications", physician.board_certifications,
          { kind: "lines", hint: "One per line." }),
        field(at + ".bio", "Short biography", physician.bio, { kind: "long" })
      ]));
  }

  function buildForm(data) {
    var entry = data.entry;
    var referral = entry.referral || {};
    var parts = [
      group("About you", {}, [field("submitted_by", "Your email address", "", { required: true, type: "email",
        autocomplete: "email", hint: "So that the maintainers can ask you about the update. It is not published." })]),
      group("The clinic", {}, placeholderBox(entry, "placeholder",
        "These are the clinic's real details (the directory shows them as sample data until now)").concat([
        field("name", "Clinic name", entry.name, { required: true }),
        field("website", "Website", entry.website, { type: "url", hint: "An https:// address.", pattern: "https://.+" }),
        field("summary", "Short description", entry.summary, { kind: "long", required: true,
          hint: "One or two plain-language sentences for patients." }),
        yesNo("accepting_new_patients", "Accepting new patients?", entry.accepting_new_patients, false),
        yesNo("telehealth", "Offers telehealth visits?", entry.telehealth, true),
        field("languages", "Languages spoken", entry.languages, { kind: "words", required: true,
          hint: "Language codes separated by commas, e.g. en, es.",
          pattern: "[a-z]{2,3}(-[A-Za-z0-9]{2,8})*(, *[a-z]{2,3}(-[A-Za-z0-9]{2,8})*)*" }),
        field("insurance", "Insurance accepted", entry.insurance, { kind: "lines", hint: "One per line." })
      ])),
      choices("services", "Treatments offered", data.services, entry.services || [], true),
      choices("conditions", "Conditions treated", data.conditions, entry.conditions || [], false)
    ];
    var locations = element("div", { class: "entries" }, Object.keys(entry.locations || {}).map(function (slug) {
      return locationGroup(slug, entry.locations[slug], false);
    }));
    locations.appendChild(adder("location", function (slug) { return locationGroup(slug, {}, true); }));
    var physicians = element("div", { class: "entries" }, Object.keys(entry.physicians || {}).map(function (slug) {
      return physicianGroup(slug, entry.physicians[slug], false);
    }));
    physicians.appendChild(adder("physician", function (slug) { return physicianGroup(slug, {}, true); }));
    parts.push(locations, physicians);
    parts.push(group("Referrals from other clinicians", { class: "referral", "data-path": "referral" },
      placeholderBox(referral, "referral.placeholder", "These are the clinic's real referral contacts").concat([
        field("referral.fax", "Referral fax", referral.fax, PHONE),
        field("referral.phone", "Referral phone", referral.phone, PHONE),
        field("referral.email", "Referral email", referral.email, { type: "email" }),
        field("referral.requirements", "What a referral should include", referral.requirements,
          { kind: "lines", hint: "One item per line." }),
        field("referral.notes", "Notes for referring clinicians", referral.notes, { kind: "long" })
      ])));
    parts.push(group("Confirm and send", {}, [
      confirmation("last_verified", "verified", "Everything in this profile is correct as of today"),
      field("signature_key", "Signing key", "", { type: "password", hint: "Only if the directory gave your clinic a " +
        "key. The key stays in your browser; the update file carries a signature made with it." }),
      element("p", {}, [element("button", { type: "submit" }, ["Make the update file"])])
    ]));
    parts.forEach(function (part) { form.appendChild(part); });
  }

  // -- reading the fields ------------------------------------------------------------------------

  function splitList(text, separator) {
    return text.split(separator).map(function (item) { return item.trim(); })
      .filter(function (item) { return item !== ""; });
  }

  function valueOf(element, useDefault) {
    var text = (useDefault ? element.defaultValue : element.value).trim();
    switch (element.getAttribute("data-kind")) {
      case "lines": return splitList(text, /\r?\n/);
      case "words": return splitList(text, ",");
      default: return text === "" ? null : text;
    }
  }

  function same(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }

  function setPath(target, path, value) {
    var parts = path.split(".");
    var node = target;
    for (var i = 0; i < parts.length - 1; i++) {
      if (!Object.prototype.hasOwnProperty.call(node, parts[i])) node[parts[i]] = {};
      node = node[parts[i]];
    }
    node[parts[parts.length - 1]] = value;
  }

  function emptyList(value) {
    return Array.isArray(value) && value.length === 0;
  }

  // What changed, as a partial clinic entry (mappings nest; lists replace; null deletes).
  function collectChanges() {
    var changes = {};
    var addressChanged = {};
    form.querySelectorAll("input[data-kind], textarea[data-kind]").forEach(function (element) {
      var kind = element.getAttribute("data-kind");
      if (META_FIELDS[element.name] || element.disabled) return;
      if (kind === "remove") {
        if (element.checked) setPath(changes, element.name, null);
        return;
      }
      if (kind === "not-placeholder") {
        if (element.checked) setPath(changes, element.name, null);
        return;
      }
      if (kind === "verified") {
        if (element.checked) setPath(changes, element.name, localDate());
        return;
      }
      var now = valueOf(element, false);
      var before = valueOf(element, true);
      if (same(now, before)) return;
      // An emptied list is left out of the entry, as the registry writes no empty lists.
      setPath(changes, element.name, emptyList(now) ? null : now);
      if (GEO_FIELDS.test(element.name)) addressChanged[element.name.split(".address.")[0]] = true;
    });
    form.querySelectorAll("fieldset[data-kind='boolean']").forEach(function (group) {
      var checked = group.querySelector("input:checked");
      var initial = Array.prototype.filter.call(group.querySelectorAll("input"), function (input) {
        return input.defaultChecked;
      })[0];
      if (!checked || checked === initial) return;
      setPath(changes, group.getAttribute("data-path"), checked.value === "" ? null : checked.value === "true");
    });
    form.querySelectorAll("fieldset[data-kind='choices']").forEach(function (group) {
      // What stays chosen keeps the clinic's order; what is newly chosen follows, in the page's order.
      var before = splitList(group.getAttribute("data-current"), " ");
      var chosen = Array.prototype.filter.call(group.querySelectorAll("input[type='checkbox']"), function (box) {
        return box.checked;
      }).map(function (box) { return box.value; });
      var now = before.filter(function (slug) { return chosen.indexOf(slug) >= 0; })
        .concat(chosen.filter(function (slug) { return before.indexOf(slug) < 0; }));
      if (!same(now, before)) setPath(changes, group.getAttribute("data-path"), now.length ? now : null);
    });
    nameNewEntries(changes);
    // A moved office's coordinates are looked up again (`make geocode`), not kept from the old address.
    Object.keys(addressChanged).forEach(function (location) {
      var fieldset = form.querySelector("fieldset[data-path='" + location + "']");
      if (fieldset && fieldset.hasAttribute("data-has-geo")) setPath(changes, location + ".geo", null);
    });
    return changes;
  }

  // A new location or physician gets its slug here: from the office's city (as the registry's
  // locations are named) or the physician's name, made unique among the clinic's own. A physician's
  // slug must be unique across the directory too: `make apply-update` says so if it is not.
  function nameNewEntries(changes) {
    form.querySelectorAll("fieldset[data-new]").forEach(function (group) {
      var section = group.getAttribute("data-new");
      var temporary = group.getAttribute("data-path").split(".")[1];
      var value = (changes[section] || {})[temporary];
      if (!value) return;
      delete changes[section][temporary];
      var base = slugify(section === "locations" ? (value.address || {}).city || value.name : value.name) ||
        section.slice(0, -1);
      var taken = Object.keys(changes[section]).concat(Array.prototype.map.call(
        form.querySelectorAll("fieldset[data-path^='" + section + ".']:not([data-new])"),
        function (other) { return other.getAttribute("data-path").split(".")[1]; }));
      var slug = base;
      for (var n = 2; taken.indexOf(slug) >= 0; n++) slug = base + "-" + n;
      changes[section][slug] = value;
    });
  }

  function slugify(text) {
    return (text || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  }

  function localDate() {
    var now = new Date();
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return now.getFullYear() + "-" + two(now.getMonth() + 1) + "-" + two(now.getDate());
  }

  // -- checking the fields -----------------------------------------------------------------------

  // A field's name in the list of mistakes: the legends of the groups it is in, then its label.
  function labelOf(element) {
    var names = [];
    var label = element.id ? form.querySelector("label[for='" + element.id + "']") : null;
    if (label) names.push(label.firstChild.textContent.trim());
    for (var group = element.closest("fieldset"); group; group = group.parentElement.closest("fieldset")) {
      var legend = group.querySelector("legend");
      if (legend) names.unshift(legend.firstChild.textContent.trim());
    }
    return names.join(": ");
  }

  function clearErrors() {
    form.querySelectorAll("[aria-invalid]").forEach(function (element) {
      element.removeAttribute("aria-invalid");
      var described = (element.getAttribute("aria-describedby") || "").split(" ")
        .filter(function (id) { return id !== element.id + "-error"; }).join(" ");
      if (described) element.setAttribute("aria-describedby", described);
      else element.removeAttribute("aria-describedby");
    });
    form.querySelectorAll(".field-error").forEach(function (note) {
      if (note.closest(".field")) note.remove();  // made by markInvalid
      else note.hidden = true;
    });
    errors.hidden = true;
    errors.querySelector("ul").textContent = "";
  }

  // The field's message goes right after it, and is part of its description for screen readers.
  function markInvalid(element, message, found) {
    var note = document.createElement("p");
    note.className = "field-error";
    note.id = element.id + "-error";
    note.textContent = message;
    element.insertAdjacentElement("afterend", note);
    element.setAttribute("aria-describedby",
      ((element.getAttribute("aria-describedby") || "") + " " + note.id).trim());
    element.setAttribute("aria-invalid", "true");
    found.push({ target: element, text: labelOf(element) + ": " + message });
  }

  function messageFor(element) {
    var validity = element.validity;
    if (validity.valueMissing) return "this is required";
    if (validity.typeMismatch && element.type === "email") return "enter an email address like office@example.org";
    if (validity.typeMismatch && element.type === "url") return "enter a web address starting with https://";
    if (validity.patternMismatch) {
      var hint = document.getElementById(element.id + "-hint");
      return "this is not in the expected form" + (hint ? ". " + hint.textContent.trim() : "");
    }
    return element.validationMessage;
  }

  function checkFields() {
    clearErrors();
    var found = [];
    form.querySelectorAll("input[data-kind], textarea[data-kind]").forEach(function (element) {
      if (!element.checkValidity()) markInvalid(element, messageFor(element), found);
    });
    // The registry needs at least one location: closing them all is an update the maintainers would refuse.
    var open = form.querySelectorAll("fieldset.location").length -
      form.querySelectorAll("fieldset.location input[data-kind='remove']:checked").length;
    if (open < 1) {
      var box = form.querySelector("fieldset.location input[data-kind='remove']");
      found.push({ target: box, text: "Locations: the directory needs at least one open location; " +
        "add the new one, or keep one of these" });
    }
    form.querySelectorAll("fieldset[data-kind='choices'][data-required]").forEach(function (group) {
      if (group.querySelector("input:checked")) return;
      var first = group.querySelector("input");
      var note = group.querySelector(".field-error");
      note.textContent = "choose at least one";
      note.hidden = false;
      found.push({ target: first, text: group.querySelector("legend").firstChild.textContent.trim() + ": choose at least one" });
    });
    if (!found.length) return true;
    var list = errors.querySelector("ul");
    found.forEach(function (problem) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = "#" + problem.target.id;
      link.textContent = problem.text;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        problem.target.focus();
      });
      item.appendChild(link);
      list.appendChild(item);
    });
    errors.hidden = false;
    errors.focus();
    return false;
  }

  // -- writing the update file -------------------------------------------------------------------

  // JSON's string escapes are YAML's too; characters YAML would not take raw are escaped as well.
  function yamlString(text) {
    return JSON.stringify(text).replace(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, function (c) {
      return "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4);
    });
  }

  function yamlScalar(value) {
    if (value === null) return "null";
    if (typeof value === "boolean") return value ? "true" : "false";
    if (Array.isArray(value)) return "[" + value.map(yamlScalar).join(", ") + "]";
    return yamlString(String(value));
  }

  // Keys are slugs and field names; one YAML 1.1 would read as a boolean or a number is quoted.
  function yamlKey(key) {
    return /^[a-z_][a-z0-9_-]*$/.test(key) && !/^(y|n|yes|no|on|off|true|false|null)$/.test(key)
      ? key : yamlString(key);
  }

  function yamlLines(mapping, indent) {
    var lines = [];
    Object.keys(mapping).forEach(function (key) {
      var value = mapping[key];
      var name = yamlKey(key);
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        lines.push(indent + name + ":");
        lines = lines.concat(yamlLines(value, indent + "  "));
      } else {
        lines.push(indent + name + ": " + yamlScalar(value));
      }
    });
    return lines;
  }

  // The canonical update a signature covers: JSON with keys sorted at every level, no spaces.
  function canonical(value) {
    if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
    if (value !== null && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (key) {
        return JSON.stringify(key) + ":" + canonical(value[key]);
      }).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (byte) {
      return ("0" + byte.toString(16)).slice(-2);
    }).join("");
  }

  function sign(key, update) {
    var encoder = new TextEncoder();
    return crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (cryptoKey) {
        return crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(canonical(update)));
      }).then(hex);
  }

  function countChanges(changes) {
    return Object.keys(changes).reduce(function (total, key) {
      var value = changes[key];
      return total + (value !== null && typeof value === "object" && !Array.isArray(value) ? countChanges(value) : 1);
    }, 0);
  }

  function showResult(update, signature) {
    var lines = [
      "# A profile update for the clinic directory; apply with: make apply-update FILE=<this file>",
      "clinic: " + yamlString(update.clinic),
      "submitted_by: " + yamlString(update.submitted_by),
      "submitted_at: " + yamlString(update.submitted_at),
      "base: " + yamlString(update.base),
      "changes:"
    ].concat(yamlLines(update.changes, "  "));
    if (signature) lines.push("signature: " + yamlString(signature));
    var text = lines.join("\n") + "\n";
    var count = countChanges(update.changes);
    document.getElementById("update-text").value = text;
    document.getElementById("update-summary").textContent = count === 1
      ? "One change is in the file." : count + " changes are in the file.";
    var download = document.getElementById("update-download");
    if (download.href.indexOf("blob:") === 0) URL.revokeObjectURL(download.href);
    download.href = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
    result.hidden = false;
    document.getElementById("update-result-heading").focus();
  }

  function showProblem(message) {
    clearErrors();
    var item = document.createElement("li");
    item.textContent = message;
    errors.querySelector("ul").appendChild(item);
    errors.hidden = false;
    errors.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    result.hidden = true;
    if (!checkFields()) return;
    var changes = collectChanges();
    if (!Object.keys(changes).length) {
      showProblem("Nothing has changed yet: edit the fields that are out of date, or tick the box confirming "
        + "that everything is correct as of today.");
      return;
    }
    var update = {
      clinic: form.getAttribute("data-clinic"),
      submitted_by: form.elements.submitted_by.value.trim(),
      submitted_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      base: form.getAttribute("data-base"),
      changes: changes
    };
    var key = form.elements.signature_key.value;
    if (!key) {
      showResult(update, "");
      return;
    }
    if (!window.crypto || !crypto.subtle) {
      showProblem("This browser cannot sign here (signing needs the site over https). "
        + "Leave the signing key empty and ask the maintainers how to sign.");
      return;
    }
    sign(key, update).then(function (signature) { showResult(update, signature); }, function () {
      showProblem("The update could not be signed with this key.");
    });
  });

  buildForm(JSON.parse(island.textContent));
  form.hidden = false;
})();
