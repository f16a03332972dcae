// The "Example JavaScript Client" of the original design document, the FastAPI system
// the protocol comes from, unchanged but for the URL, which may be given as the first
// argument. It needs a browser-style global WebSocket: Node.js 22, or 20 with
// --experimental-websocket.
// The document's client never exits; the last lines end the process once it has logged
// the complete response.
const url = process.argv[2] || 'ws://localhost:8050/ws?session_id=my-session&user_id=user1';

// Connect
const ws = new WebSocket(url);

// Handle connection
ws.onopen = () => {
  console.log('Connected');

  // Send query
  ws.send(JSON.stringify({
    type: 'query',
    query: 'Help me analyze this document',
    session_id: 'my-session'
  }));
};

// Handle messages
ws.onmessage = (event) => {
  const message = JSON.parse(event.data);

  switch(message.type) {
    case 'connected':
      console.log('Connection established');
      break;
    case 'chunk':
      console.log('Chunk:', message.content);
      break;
    case 'complete':
      console.log('Complete response:', message.full_response);
      break;
    case 'error':
      console.error('Error:', message.error);
      break;
  }
};

// Handle disconnect
ws.onclose = () => console.log('Disconnected');
ws.onerror = (error) => console.error('Error:', error);

// Not in the document: end the process after the complete response.
const log = console.log;
console.log = (...args) => {
  log(...args);
  if (args[0] === 'Complete response:') {
    ws.close();
    setImmediate(() => process.exit(0));
  }
};
