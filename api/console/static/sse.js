// Server-Sent Events read from a fetch response body. EventSource cannot send the API key
// header, so the console reads the stream itself (the format: the WHATWG HTML standard,
// "Server-sent events", parsing an event stream).

/** Yields {event, id, data} for each event of `response`'s body; `data` is parsed JSON. */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", id: null, data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an incomplete last line waits for more bytes
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) yield finish(event);
          event = { event: "message", id: null, data: [] };
          continue;
        }
        if (line.startsWith(":")) continue; // a keep-alive comment
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event.event = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
    }
  } finally {
    // Stopped early (the reader left, or a navigation): close the connection.
    await reader.cancel().catch(() => {});
  }
}

function finish(event) {
  const text = event.data.join("\n");
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    data = text;
  }
  return { event: event.event, id: event.id, data };
}
