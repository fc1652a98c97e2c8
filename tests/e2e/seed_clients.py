# ruff: noqa
# type: ignore
"""Seed 001's Python clients, verbatim (indentation restored). The one change: the
seed was written for websockets < 14, whose `connect` took `extra_headers`; that client
lives on as `websockets.legacy.client.connect`, so the name `websockets` below is it."""

import asyncio
import aiohttp
import base64
import json
import zipfile
import io

from types import SimpleNamespace
import websockets.legacy.client as _legacy

websockets = SimpleNamespace(connect=_legacy.connect)


class ContainerTerminal:
    def __init__(self, base_url, cuid, username, password):
        self.ws_url = f"ws://{base_url.replace('http://', '')}/ws/{cuid}"
        self.auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.ws = None

    async def connect(self, cols=80, rows=24):
        # Connect with TTY size
        headers = {"Authorization": f"Basic {self.auth}"}
        uri = f"{self.ws_url}?cols={cols}&rows={rows}"
        self.ws = await websockets.connect(uri, extra_headers=headers)
        # Start receiver task
        asyncio.create_task(self._receive_output())

    async def _receive_output(self):
        """Receive and print output from container"""
        async for message in self.ws:
            data = json.loads(message)
            if data["type"] == "stdout":
                if data["encoding"] == "base64":
                    import base64

                    text = base64.b64decode(data["data"]).decode("utf-8", errors="replace")
                else:
                    text = data["data"]
                print(text, end="")
            elif data["type"] == "stderr":
                if data["encoding"] == "base64":
                    import base64

                    text = base64.b64decode(data["data"]).decode("utf-8", errors="replace")
                else:
                    text = data["data"]
                print(f"[ERROR] {text}", end="")
            elif data["type"] == "exit":
                print(f"\n[Process exited with code {data['code']}]")
                await self.ws.close()
            elif data["type"] == "error":
                print(f"[ERROR] {data['error']}")

    async def send_input(self, text):
        """Send input to container"""
        await self.ws.send(json.dumps({"type": "stdin", "data": text, "encoding": "utf8"}))

    async def resize(self, cols, rows):
        """Resize terminal"""
        await self.ws.send(json.dumps({"type": "resize", "cols": cols, "rows": rows}))

    async def send_signal(self, signal_name):
        """Send signal (INT, TERM, KILL)"""
        await self.ws.send(json.dumps({"type": "signal", "name": signal_name}))


class ContainerOrchestrator:
    def __init__(self, base_url, username, password):
        self.base_url = base_url
        auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {auth}"}

    async def deploy_and_run(self, image, code, env=None):
        async with aiohttp.ClientSession(headers=self.headers) as session:
            # 1. Create container
            create_payload = {
                "image": image,
                "env": env or {},
                "tags": ["automated"],
                "resources": {"cpus": 0.5, "memory": "1024m"},
            }
            async with session.post(f"{self.base_url}/containers", json=create_payload) as resp:
                if resp.status != 201:
                    raise Exception(f"Failed to create container: {await resp.text()}")
                container = await resp.json()
                cuid = container["cuid"]
                print(f"Created container: {cuid}")
            # 2. Upload code
            zip_buffer = io.BytesIO()
            with zipfile.ZipFile(zip_buffer, "w") as zf:
                zf.writestr("boot.py", code)
            async with session.post(
                f"{self.base_url}/containers/{cuid}/upload-zip",
                data=zip_buffer.getvalue(),
                headers={**self.headers, "Content-Type": "application/zip"},
            ) as resp:
                if resp.status != 200:
                    raise Exception(f"Failed to upload code: {await resp.text()}")
                print("Code uploaded successfully")
            # 3. Start container
            async with session.post(f"{self.base_url}/containers/{cuid}/start") as resp:
                if resp.status != 200:
                    raise Exception(f"Failed to start container: {await resp.text()}")
                print("Container started")
            # 4. Connect via WebSocket to see output
            ws_url = f"ws://{self.base_url.replace('http://', '')}/ws/{cuid}"
            async with aiohttp.ClientSession() as ws_session:
                async with ws_session.ws_connect(ws_url, headers=self.headers) as ws:
                    print("Connected to container output:")
                    # Read output for 10 seconds
                    timeout = asyncio.create_task(asyncio.sleep(10))
                    receive = asyncio.create_task(ws.receive())
                    while not timeout.done():
                        done, pending = await asyncio.wait(
                            {timeout, receive}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if receive in done:
                            msg = receive.result()
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                data = json.loads(msg.data)
                                if data["type"] == "stdout":
                                    print(f"[OUT] {data['data']}", end="")
                                elif data["type"] == "stderr":
                                    print(f"[ERR] {data['data']}", end="")
                            receive = asyncio.create_task(ws.receive())
            # 5. Stop and delete container
            async with session.post(f"{self.base_url}/containers/{cuid}/stop") as resp:
                print("\nContainer stopped")
            async with session.delete(f"{self.base_url}/containers/{cuid}") as resp:
                print("Container deleted")
            return cuid
