// Progressive enhancement only: every page works without this file.
// - An upload shows its progress, then goes to the import's report.
// - A long form post (a scoring run) disables its button and says it is working.
"use strict";

function enhance(root) {
  for (const form of root.querySelectorAll("form[data-busy]")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
        button.textContent = form.dataset.busy;
      }
    });
  }
  for (const form of root.querySelectorAll("form[data-upload]")) {
    form.addEventListener("submit", (event) => upload(form, event));
  }
}

function upload(form, event) {
  if (!window.XMLHttpRequest || !window.FormData || !window.DOMParser) return;
  event.preventDefault();
  const bar = form.querySelector(".upload-progress");
  const status = form.querySelector(".upload-status");
  const button = form.querySelector("button[type=submit]");
  const say = (text) => { status.hidden = false; status.textContent = text; };
  const failed = () => { say(status.dataset.failed); button.disabled = false; bar.hidden = true; };
  bar.hidden = false;
  button.disabled = true;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const percent = Math.round((e.loaded / e.total) * 100);
    bar.value = percent;
    say(status.dataset.uploading.replace("{percent}", percent));
  });
  xhr.upload.addEventListener("load", () => {
    bar.removeAttribute("value"); // indeterminate while the server imports the rows
    say(status.dataset.processing);
  });
  xhr.addEventListener("load", () => {
    if (xhr.status >= 200 && xhr.status < 300 && xhr.responseURL) {
      window.location.assign(xhr.responseURL); // the report (or the login form)
      return;
    }
    // A refusal (a file that cannot be read) comes back as the page: show it in place.
    const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const main = page.querySelector("main");
    if (!main) return failed();
    document.querySelector("main").replaceWith(main);
    enhance(main);
  });
  xhr.addEventListener("error", failed);
  xhr.send(new FormData(form));
}

document.addEventListener("DOMContentLoaded", () => enhance(document));
