// Test fixture for the cocotb testbench machinery: a one-stage stream register with the
// generated cores' port names. Each input element comes back as one output word (data
// sign-extended as is, same last flag) one cycle later, so cycles(N) = N + 1 at full rate.
// Parameter W: data bits. Output payload {last, data[W-1:0]}.
module echo_core #(parameter W = 8) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W:0]   i__payload,
    input  wire         i__valid,
    output wire         i__ready,
    output reg  [W:0]   o__payload,
    output reg          o__valid,
    input  wire         o__ready
);
    assign i__ready = !o__valid || o__ready;
    always @(posedge clk) begin
        if (rst) begin
            o__valid <= 1'b0;
            o__payload <= {(W+1){1'b0}};
        end else if (i__valid && i__ready) begin
            o__valid <= 1'b1;
            o__payload <= i__payload;
        end else if (o__ready) begin
            o__valid <= 1'b0;
        end
    end
endmodule
