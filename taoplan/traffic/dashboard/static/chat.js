"use strict";
// The chat page: the arch's sampling fields with their defaults and ranges (every value visible and
// sent as shown), media URLs, a system message; the reply streamed from the gateway's own
// /v1/chat/completions, so the key, the request log and the cost apply as to any client.
(() => {
  const name = TP.service;
  let form = null;          // the /form answer: sampling fields, media kinds, reply kind
  let history = [];         // generic servers keep the conversation; TAO servers read one message
  let inFlight = null;      // AbortController of the turn being answered

  function hint(f) {
    const bits = ["default " + JSON.stringify(f.default)];
    if (f.min !== null && f.max !== null) bits.push(f.min + "…" + f.max);
    else if (f.min !== null) bits.push("≥ " + f.min);
    else if (f.max !== null) bits.push("≤ " + f.max);
    if (f.help) bits.push(f.help);
    return bits.join(" · ");
  }

  function buildFields() {
    const box = document.getElementById("fields");
    box.replaceChildren(...form.sampling.map((f) => {
      const input = TP.el("input", {
        id: "f-" + f.name, name: f.name, required: f.type !== "str",
        type: f.type === "str" ? "text" : "number",
        step: f.type === "int" ? "1" : (f.type === "float" ? "any" : null),
        min: f.min, max: f.max, "data-type": f.type,
      });
      input.value = f.default;
      return TP.el("label", { class: "field" }, f.name, input, TP.el("small", { class: "muted", text: hint(f) }));
    }));
    document.getElementById("sampling").hidden = !form.sampling.length;
  }

  function sampling() {
    const out = {};
    for (const f of form.sampling) {
      const input = document.getElementById("f-" + f.name);
      if (!input.reportValidity()) throw new Error(f.name + ": " + input.validationMessage);
      if (f.type === "str") out[f.name] = input.value;
      else out[f.name] = f.type === "int" ? parseInt(input.value, 10) : parseFloat(input.value);
    }
    return out;
  }

  function urls(id) {
    return document.getElementById(id).value.split("\n").map((s) => s.trim()).filter(Boolean);
  }

  function userMessage(prompt) {
    const images = form.media_kinds.includes("image") ? urls("images") : [];
    const videos = form.media_kinds.includes("video") ? urls("videos") : [];
    if (!images.length && !videos.length) return { message: { role: "user", content: prompt }, media: [] };
    const parts = [{ type: "text", text: prompt }];
    images.forEach((url) => parts.push({ type: "image_url", image_url: { url } }));
    videos.forEach((url) => parts.push({ type: "video_url", video_url: { url } }));
    return { message: { role: "user", content: parts }, media: images.concat(videos) };
  }

  function showReply(node, text, done) {
    if (done && /^data:video\//.test(text)) {
      node.replaceChildren(TP.el("video", { controls: "", src: text, class: "reply-video" }));
    } else if (done && /^data:image\//.test(text)) {
      node.replaceChildren(TP.el("img", { src: text, alt: "the reply", class: "reply-video" }));
    } else {
      node.textContent = text;
    }
  }

  async function readStream(reply, onText) {
    const reader = reply.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return text;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) { text += delta.content; onText(text); }
        }
      }
    }
    return text;
  }

  async function send(ev) {
    ev.preventDefault();
    const error = document.getElementById("chat-error");
    error.hidden = true;
    let values;
    try { values = sampling(); } catch (e) { error.hidden = false; error.textContent = e.message; return; }
    const prompt = document.getElementById("prompt").value;
    const { message, media } = userMessage(prompt);
    const system = document.getElementById("system").value.trim();
    const messages = [];
    if (system) messages.push({ role: "system", content: system });
    if (!form.tao) messages.push(...history);
    messages.push(message);
    const body = Object.assign({ model: name, messages, stream: true }, values);

    const turn = TP.el("div", { class: "turn" });
    turn.append(TP.el("div", { class: "you" }, TP.el("strong", { text: "You: " }), prompt,
      ...media.map((u) => TP.el("div", { class: "muted media", text: u }))));
    const answer = TP.el("pre", { class: "answer", "aria-live": "polite", text: "…" });
    turn.append(answer);
    document.getElementById("transcript").append(turn);

    inFlight = new AbortController();
    document.getElementById("send").disabled = true;
    document.getElementById("stop").disabled = false;
    try {
      const reply = await fetch("/v1/chat/completions", {
        method: "POST", signal: inFlight.signal, cache: "no-store",
        headers: TP.headers({ "Content-Type": "application/json" }),
        body: JSON.stringify(body),
      });
      if (!reply.ok) {
        let data = null;
        try { data = await reply.json(); } catch (e) { data = null; }
        throw new Error((data && data.error && data.error.message) || ("HTTP " + reply.status));
      }
      const text = await readStream(reply, (t) => showReply(answer, t, false));
      showReply(answer, text, true);
      answer.classList.add("done");
      if (!form.tao) history.push(message, { role: "assistant", content: text });
    } catch (e) {
      answer.textContent = e.name === "AbortError" ? "(stopped)" : "";
      if (e.name !== "AbortError") { error.hidden = false; error.textContent = e.message; }
      answer.classList.add("failed");
    } finally {
      inFlight = null;
      document.getElementById("send").disabled = false;
      document.getElementById("stop").disabled = true;
    }
  }

  async function load() {
    form = await TP.api("/ui/api/services/" + encodeURIComponent(name) + "/form");
    const s = form.service;
    document.getElementById("chat-state").replaceChildren(TP.badge(s.state, s.reason));
    document.getElementById("images-box").hidden = !form.media_kinds.includes("image");
    document.getElementById("videos-box").hidden = !form.media_kinds.includes("video");
    const notes = [];
    if (form.tao) notes.push(s.arch + ": TAO servers read only the first user message, so each send is a turn on its own.");
    else notes.push(s.arch + " server: the conversation is kept and sent whole; New conversation starts over.");
    if (form.requires_media) notes.push("It needs at least one image or video URL.");
    if (form.reply === "video") notes.push("It answers with a video, shown below when it is done.");
    document.getElementById("chat-note").textContent = notes.join(" ");
    document.getElementById("new-chat").hidden = form.tao;
    buildFields();
  }

  document.getElementById("chat-form").addEventListener("submit", send);
  document.getElementById("stop").addEventListener("click", () => inFlight && inFlight.abort());
  document.getElementById("defaults").addEventListener("click", buildFields);
  document.getElementById("new-chat").addEventListener("click", () => {
    history = [];
    document.getElementById("transcript").replaceChildren();
  });
  TP.onStart(() => load().catch((e) => TP.banner(e.message)));
})();
