-- end: session sid ends (DISC-3). ARGV: sid.
end_session(ARGV[1])
return 1
