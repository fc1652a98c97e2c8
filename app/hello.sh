#!/bin/sh
echo hello from /app
