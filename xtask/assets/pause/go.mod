module todo-dapr.local/pause

go 1.24
