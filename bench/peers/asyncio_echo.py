"""Python asyncio echo peer (streams) for bench/compare. Usage: asyncio_echo.py PORT"""
import asyncio
import socket
import sys


async def handle(reader, writer):
    writer.get_extra_info('socket').setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port):
    server = await asyncio.start_server(handle, '127.0.0.1', port, backlog=4096)
    print('Listening at 127.0.0.1:%d' % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
