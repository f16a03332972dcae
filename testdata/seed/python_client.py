# The "Example Python Client" of the original design document, the FastAPI system
# the protocol comes from, unchanged but for one line: the URI may be given as the
# first argument.
import asyncio
import websockets
import json
import sys

async def test_websocket():
    uri = sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8050/ws?session_id=test-session"

    async with websockets.connect(uri) as websocket:
        # Wait for connected message
        connected = await websocket.recv()
        print(f"< {connected}")

        # Send query
        query = {
            "type": "query",
            "query": "What is the capital of France?",
            "session_id": "test-session"
        }
        await websocket.send(json.dumps(query))
        print(f"> {query}")

        # Receive chunks
        while True:
            message = await websocket.recv()
            data = json.loads(message)
            print(f"< {data['type']}: {data.get('content', '')}")

            if data['type'] == 'complete':
                break

asyncio.run(test_websocket())
